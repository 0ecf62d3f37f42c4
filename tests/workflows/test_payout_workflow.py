"""The payout workflows' orchestration on the time-skipping server, activities stubbed by name."""

import dataclasses
from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from payments.schema.messages import (
    MerchantPageRequest,
    PayoutFailure,
    PayoutRequest,
    PayoutRunInput,
    PayoutRunSummary,
    PayoutTransfer,
    PayoutView,
    ReserveRequest,
)
from payments.workflows.payout import MerchantPayoutWorkflow, PayoutRunWorkflow, workflow_id
from tests.services import fresh_key


def refuse_transfer(_: PayoutView) -> PayoutTransfer:
    raise ApplicationError(
        "No such destination", {"code": "resource_missing"}, type="StripeRequestRefused", non_retryable=True
    )


class FakePayoutSteps:
    """Balances in a dict, payouts in a dict, Stripe a function; every call recorded."""

    def __init__(
        self, balances: dict[str, int], transfer: Callable[[PayoutView], PayoutTransfer] | None = None
    ) -> None:
        self.balances = dict(balances)
        self.payouts: dict[tuple[str, str], PayoutView] = {}
        self.calls: list[str] = []
        self._transfer = transfer or (lambda view: PayoutTransfer(view.payout_id, f"tr_{view.merchant_id}"))

    def activities(self) -> list[Any]:
        fake = self

        @activity.defn(name="reserve_payout")
        async def reserve_payout(reserve: ReserveRequest) -> PayoutView:
            request = reserve.request
            fake.calls.append(f"reserve:{request.merchant_id}")
            if (request.merchant_id, request.idempotency_key) in fake.payouts:
                return dataclasses.replace(fake.payouts[request.merchant_id, request.idempotency_key], replayed=True)
            available = fake.balances.get(request.merchant_id, 0)
            amount = request.amount or available
            if not 0 < amount <= available:
                raise ApplicationError(
                    "short", {"available": available}, type="InsufficientBalance", non_retryable=True
                )
            fake.balances[request.merchant_id] -= amount
            view = PayoutView(
                reserve.payout_id, request.merchant_id, amount, "usd", "in_transit", request.period, "acct"
            )
            fake.payouts[request.merchant_id, request.idempotency_key] = view
            return view

        @activity.defn(name="transfer_payout")
        async def transfer_payout(view: PayoutView) -> PayoutTransfer:
            fake.calls.append(f"transfer:{view.merchant_id}")
            return fake._transfer(view)

        def settle(payout_id: str, **changes: Any) -> PayoutView:
            key = next(k for k, v in fake.payouts.items() if v.payout_id == payout_id)
            fake.payouts[key] = dataclasses.replace(fake.payouts[key], **changes)
            return fake.payouts[key]

        @activity.defn(name="record_payout_paid")
        async def record_payout_paid(transfer: PayoutTransfer) -> PayoutView:
            fake.calls.append("paid")
            return settle(transfer.payout_id, status="paid", stripe_transfer_id=transfer.stripe_transfer_id)

        @activity.defn(name="fail_payout")
        async def fail_payout(failure: PayoutFailure) -> PayoutView:
            fake.calls.append("failed")
            view = settle(failure.payout_id, status="failed", failure_code=failure.failure_code)
            fake.balances[view.merchant_id] += view.amount
            return view

        @activity.defn(name="payable_merchants")
        async def payable_merchants(page: MerchantPageRequest) -> list[str]:
            fake.calls.append(f"page:{page.after_merchant_id}")
            ids = sorted(m for m, b in fake.balances.items() if b > 0)
            return [m for m in ids if page.after_merchant_id is None or m > page.after_merchant_id][: page.limit]

        return [reserve_payout, transfer_payout, record_payout_paid, fail_payout, payable_merchants]


def queue() -> str:
    return f"payouts-{fresh_key()}"


async def pay(env: WorkflowEnvironment, fake: FakePayoutSteps, merchant_id: str, key: str = "p1") -> PayoutView | None:
    task_queue = queue()
    async with Worker(
        env.client, task_queue=task_queue, workflows=[MerchantPayoutWorkflow], activities=fake.activities()
    ):
        return await env.client.execute_workflow(
            MerchantPayoutWorkflow.run,
            PayoutRequest(merchant_id, key, "2026-11-24"),
            id=workflow_id(merchant_id, f"{key}-{fresh_key()}"),
            task_queue=task_queue,
        )


async def test_reserve_transfer_then_paid(time_skipping_env: WorkflowEnvironment) -> None:
    fake = FakePayoutSteps({"m1": 975})
    view = await pay(time_skipping_env, fake, "m1")
    assert view is not None and (view.status, view.amount, view.stripe_transfer_id) == ("paid", 975, "tr_m1")
    assert fake.calls == ["reserve:m1", "transfer:m1", "paid"]


async def test_a_refused_transfer_reverses_the_reserve(time_skipping_env: WorkflowEnvironment) -> None:
    fake = FakePayoutSteps({"m1": 975}, transfer=refuse_transfer)
    view = await pay(time_skipping_env, fake, "m1")
    assert view is not None and (view.status, view.failure_code) == ("failed", "resource_missing")
    assert fake.balances == {"m1": 975} and fake.calls[-1] == "failed"


async def test_nothing_available_is_no_payout(time_skipping_env: WorkflowEnvironment) -> None:
    fake = FakePayoutSteps({"m1": 0})
    assert await pay(time_skipping_env, fake, "m1") is None
    assert fake.calls == ["reserve:m1"]


async def test_the_same_key_again_transfers_nothing(time_skipping_env: WorkflowEnvironment) -> None:
    fake = FakePayoutSteps({"m1": 500})
    await pay(time_skipping_env, fake, "m1")
    again = await pay(time_skipping_env, fake, "m1")
    assert again is not None and again.replayed and fake.calls.count("transfer:m1") == 1


async def test_a_run_pages_continues_as_new_and_sums_up(time_skipping_env: WorkflowEnvironment) -> None:
    fake = FakePayoutSteps({"m1": 100, "m2": 200, "m3": 0, "m4": 400, "m5": 500})
    task_queue = queue()
    async with Worker(
        time_skipping_env.client,
        task_queue=task_queue,
        workflows=[PayoutRunWorkflow, MerchantPayoutWorkflow],
        activities=fake.activities(),
    ):
        summary: PayoutRunSummary = await time_skipping_env.client.execute_workflow(
            PayoutRunWorkflow.run,
            PayoutRunInput("daily", concurrency=2, page_size=2, hold_seconds=0, period="2026-11-24"),
            id=f"run-{fresh_key()}",
            task_queue=task_queue,
        )
    assert (summary.paid, summary.failed, summary.totals) == (4, 0, {"usd": 1200})
    assert [c for c in fake.calls if c.startswith("page:")] == ["page:None", "page:m2", "page:m5"]
    assert all(balance == 0 for balance in fake.balances.values())
    # A scheduled payout transfers inside its one workflow task; an on-demand one (test_payouts.py
    # in the integration tests) answers the API first and transfers in an activity task.
    child = await time_skipping_env.client.get_workflow_handle(workflow_id("m1", "2026-11-24")).fetch_history()
    kinds = [e.event_type for e in child.events]
    assert kinds.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) == 1
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds
