"""RefundWorkflow's orchestration on the time-skipping server, Stripe and the database stubbed by
activity name: reserve -> refund at Stripe -> record what Stripe answered."""

import dataclasses
import uuid
from typing import Any

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schema.messages import RefundFailure, RefundRequest, RefundView, StripeRefund
from workflows.refund import RefundWorkflow, workflow_id


def refund_request() -> RefundRequest:
    return RefundRequest("rf_1", "tx_1", 400, "requested_by_customer", "refund-key")


class FakeRefund:
    """One refund's row in a fake database and its Refund at a fake Stripe; every call recorded."""

    def __init__(self) -> None:
        self.row: RefundView | None = None
        self.calls: list[str] = []

    def activities(self) -> list[Any]:
        fake = self

        @activity.defn(name="reserve_refund")
        async def reserve_refund(request: RefundRequest) -> RefundView:
            fake.calls.append("reserve")
            amount = request.amount or 1000
            fake.row = fake.row or RefundView(request.refund_id, request.tx_id, amount, "usd", "pending", None, "pi_1")
            return fake.row

        @activity.defn(name="refund_at_stripe")
        async def refund_at_stripe(refund: RefundView) -> StripeRefund:
            fake.calls.append("stripe")
            return StripeRefund(refund.refund_id, "re_1")

        @activity.defn(name="record_refund")
        async def record_refund(refunded: StripeRefund) -> RefundView:
            fake.calls.append("record")
            assert fake.row is not None
            fake.row = dataclasses.replace(fake.row, status="succeeded", payment_status="partially_refunded")
            return fake.row

        @activity.defn(name="fail_refund")
        async def fail_refund(failed: RefundFailure) -> RefundView:
            fake.calls.append("fail")
            assert fake.row is not None
            fake.row = dataclasses.replace(fake.row, status="failed", failure_code=failed.failure_code)
            return fake.row

        return [reserve_refund, refund_at_stripe, record_refund, fail_refund]


async def run_refund(env: WorkflowEnvironment, fake: FakeRefund) -> RefundView:
    task_queue = f"refunds-{uuid.uuid4().hex}"
    async with Worker(env.client, task_queue=task_queue, workflows=[RefundWorkflow], activities=fake.activities()):
        return await env.client.execute_workflow(
            RefundWorkflow.run, refund_request(), id=workflow_id("tx_1", uuid.uuid4().hex), task_queue=task_queue
        )


async def test_a_refund_stripe_succeeds_at_once_is_recorded_succeeded(time_skipping_env: WorkflowEnvironment) -> None:
    fake = FakeRefund()
    view = await run_refund(time_skipping_env, fake)
    assert view.status == "succeeded"
    assert fake.calls == ["reserve", "stripe", "record"]
