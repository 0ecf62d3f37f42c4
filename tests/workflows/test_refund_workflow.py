"""RefundWorkflow and RefundSettlementWorkflow on the time-skipping server (the read-back interval
passes at once), Stripe and the database stubbed by activity name: reserve -> refund at Stripe ->
record what Stripe answered; a refund Stripe holds `pending` is followed by its settlement, which
reads it back on a webhook signal or now and then until Stripe settles it."""

import dataclasses
from typing import Any

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from payments.schema.messages import (
    RefundFailure,
    RefundRequest,
    RefundSettlement,
    RefundView,
    StripeRefund,
    StripeRefundEvent,
)
from payments.workflows.refund import RefundSettlementWorkflow, RefundWorkflow, settlement_id, workflow_id
from tests.services import eventually, fresh_key

READ_BACK = 3600


def refund_request() -> RefundRequest:
    return RefundRequest("rf_1", "tx_1", 400, "requested_by_customer", "refund-key")


class FakeRefund:
    """One refund's row in a fake database and its Refund at a fake Stripe, whose status is the
    next of `stripe` at each call (the last one stays); every call recorded."""

    def __init__(self, *stripe: str) -> None:
        self.stripe = list(stripe or ["succeeded"])
        self.row: RefundView | None = None
        self.calls: list[str] = []

    def _stripe_says(self, refund_id: str) -> StripeRefund:
        status = self.stripe.pop(0) if len(self.stripe) > 1 else self.stripe[0]
        return StripeRefund(refund_id, "re_1", status, "declined" if status == "failed" else None)

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
            return fake._stripe_says(refund.refund_id)

        @activity.defn(name="read_refund")
        async def read_refund(settlement: RefundSettlement) -> StripeRefund:
            fake.calls.append("read")
            return fake._stripe_says(settlement.refund_id)

        @activity.defn(name="record_refund")
        async def record_refund(refunded: StripeRefund) -> RefundView:
            fake.calls.append(f"record:{refunded.status}")
            assert fake.row is not None
            if fake.row.status == "pending":
                status = "failed" if refunded.status in ("failed", "canceled") else refunded.status
                fake.row = dataclasses.replace(
                    fake.row, status=status, stripe_refund_id="re_1", payment_status="partially_refunded"
                )
            elif refunded.status == "failed":
                fake.row = dataclasses.replace(fake.row, status="failed", payment_status="confirmed")
            return fake.row

        @activity.defn(name="fail_refund")
        async def fail_refund(failed: RefundFailure) -> RefundView:
            fake.calls.append("fail")
            assert fake.row is not None
            fake.row = dataclasses.replace(fake.row, status="failed", failure_code=failed.failure_code)
            return fake.row

        return [reserve_refund, refund_at_stripe, read_refund, record_refund, fail_refund]


def worker(env: WorkflowEnvironment, fake: FakeRefund, task_queue: str) -> Worker:
    workflows = [RefundWorkflow, RefundSettlementWorkflow]
    return Worker(env.client, task_queue=task_queue, workflows=workflows, activities=fake.activities())


async def test_a_refund_stripe_succeeds_at_once_is_recorded_succeeded(time_skipping_env: WorkflowEnvironment) -> None:
    fake, task_queue = FakeRefund(), f"refunds-{fresh_key()}"
    async with worker(time_skipping_env, fake, task_queue):
        view = await time_skipping_env.client.execute_workflow(
            RefundWorkflow.run, refund_request(), id=workflow_id("tx_1", fresh_key()), task_queue=task_queue
        )
    assert view.status == "succeeded"
    assert fake.calls == ["reserve", "stripe", "record:succeeded"]


async def test_a_pending_refund_answers_pending_and_its_settlement_follows_the_webhook(
    own_time_skipping_env: WorkflowEnvironment,
) -> None:
    """On a server of its own: after this test the shared server stopped skipping time for the
    next one (seen here), as after a rejected update."""
    time_skipping_env = own_time_skipping_env
    fake, task_queue = FakeRefund("pending", "pending", "succeeded"), f"refunds-{fresh_key()}"
    client = time_skipping_env.client
    request = dataclasses.replace(refund_request(), refund_id=f"rf_{fresh_key()}")
    async with worker(time_skipping_env, fake, task_queue):
        view = await client.execute_workflow(
            RefundWorkflow.run, request, id=workflow_id("tx_1", fresh_key()), task_queue=task_queue
        )
        assert (view.status, view.stripe_refund_id) == ("pending", "re_1")
        settlement = client.get_workflow_handle(settlement_id(request.refund_id), result_type=RefundView)
        await eventually(lambda: _calls(fake), lambda calls: calls.count("read") == 1, "the first read-back")
        await settlement.signal(
            RefundSettlementWorkflow.stripe_event, StripeRefundEvent("evt_1", "charge.refund.updated", "re_1")
        )
        settled = await settlement.result()
    assert settled.status == "succeeded"
    assert fake.calls == [
        "reserve", "stripe", "record:pending", "read", "record:pending", "read", "record:succeeded",
    ]  # fmt: skip


async def test_without_a_webhook_the_settlement_reads_the_refund_back_until_stripe_settles_it(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    fake, task_queue = FakeRefund("pending", "pending", "pending", "failed"), f"refunds-{fresh_key()}"
    fake.row = RefundView("rf_2", "tx_1", 400, "usd", "pending", None, "pi_1", stripe_refund_id="re_1")
    async with worker(time_skipping_env, fake, task_queue):
        fake.stripe.pop(0)  # accepted earlier: the settlement starts from its first read
        settled = await time_skipping_env.client.execute_workflow(
            RefundSettlementWorkflow.run,
            RefundSettlement("rf_2", "tx_1", "re_1", READ_BACK),
            id=settlement_id(f"rf_{fresh_key()}"),
            task_queue=task_queue,
        )
    assert settled.status == "failed"
    assert fake.calls == ["read", "record:pending", "read", "record:pending", "read", "record:failed"]


async def test_a_settlement_started_after_the_refund_succeeded_records_its_later_failure(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    fake, task_queue = FakeRefund("failed"), f"refunds-{fresh_key()}"
    fake.row = RefundView("rf_3", "tx_1", 400, "usd", "succeeded", None, "pi_1", stripe_refund_id="re_1")
    async with worker(time_skipping_env, fake, task_queue):
        handle = await time_skipping_env.client.start_workflow(
            RefundSettlementWorkflow.run,
            RefundSettlement("rf_3", "tx_1", "re_1", READ_BACK),
            id=settlement_id(f"rf_{fresh_key()}"),
            task_queue=task_queue,
            start_signal="stripe_event",
            start_signal_args=[StripeRefundEvent("evt_2", "charge.refund.updated", "re_1")],
        )
        settled = await handle.result()
    assert (settled.status, settled.payment_status) == ("failed", "confirmed")
    assert fake.calls == ["read", "record:failed"]


async def _calls(fake: FakeRefund) -> list[str]:
    return list(fake.calls)
