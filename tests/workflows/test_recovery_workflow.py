"""The recovery workflows' orchestration on the time-skipping server, activities stubbed by name."""

import dataclasses
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from payments.schema.messages import (
    DeficitPageRequest,
    PlannedReversal,
    RecoveryRequest,
    RecoveryRunInput,
    ReversalResult,
)
from payments.workflows.recovery import BalanceRecoveryWorkflow, RecoveryRunWorkflow
from tests.services import fresh_key


class FakeRecovery:
    """Deficits by merchant, reversals planned once per recovery id; Stripe refuses `refused` transfers."""

    def __init__(self, deficits: dict[str, int], refused: tuple[str, ...] = ()) -> None:
        self.deficits = dict(deficits)
        self.refused = refused
        self.plans: dict[str, list[PlannedReversal]] = {}
        self.calls: list[str] = []

    def activities(self) -> list[Any]:
        fake = self

        @activity.defn(name="plan_recovery")
        async def plan_recovery(request: RecoveryRequest) -> list[PlannedReversal]:
            fake.calls.append(f"plan:{request.merchant_id}")
            if request.recovery_id not in fake.plans:
                deficit = fake.deficits.get(request.merchant_id, 0)
                transfers = [("po_2", "tr_2", min(deficit, 600)), ("po_1", "tr_1", deficit - min(deficit, 600))]
                fake.plans[request.recovery_id] = [
                    PlannedReversal(f"trv_{request.merchant_id}_{p}", request.merchant_id, p, t, a, "usd", "pending")
                    for p, t, a in transfers
                    if a > 0
                ]
            return fake.plans[request.recovery_id]

        @activity.defn(name="reverse_transfer")
        async def reverse_transfer(reversal: PlannedReversal) -> ReversalResult:
            fake.calls.append(f"reverse:{reversal.stripe_transfer_id}:{reversal.amount}")
            if reversal.stripe_transfer_id in fake.refused:
                raise ApplicationError(
                    "no", {"code": "amount_too_large"}, type="StripeRequestRefused", non_retryable=True
                )
            return ReversalResult(reversal.reversal_id, f"trr_{reversal.payout_id}")

        @activity.defn(name="record_reversal")
        async def record_reversal(result: ReversalResult) -> PlannedReversal:
            for plan in fake.plans.values():
                for index, reversal in enumerate(plan):
                    if reversal.reversal_id == result.reversal_id:
                        status = "reversed" if result.stripe_reversal_id else "failed"
                        plan[index] = dataclasses.replace(
                            reversal,
                            status=status,
                            stripe_reversal_id=result.stripe_reversal_id,
                            failure_code=result.failure_code,
                        )
                        if status == "reversed":
                            fake.deficits[reversal.merchant_id] -= reversal.amount
                        return plan[index]
            raise AssertionError(result)

        @activity.defn(name="merchants_in_deficit")
        async def merchants_in_deficit(page: DeficitPageRequest) -> list[str]:
            ids = sorted(m for m, d in fake.deficits.items() if d > 0)
            return [m for m in ids if page.after_merchant_id is None or m > page.after_merchant_id][: page.limit]

        return [plan_recovery, reverse_transfer, record_reversal, merchants_in_deficit]


async def recover(env: WorkflowEnvironment, fake: FakeRecovery, request: RecoveryRequest) -> list[PlannedReversal]:
    queue = f"recovery-{fresh_key()}"
    async with Worker(env.client, task_queue=queue, workflows=[BalanceRecoveryWorkflow], activities=fake.activities()):
        return await env.client.execute_workflow(
            BalanceRecoveryWorkflow.run, request, id=f"recovery:{fresh_key()}", task_queue=queue
        )


async def test_a_deficit_is_reversed_across_the_latest_transfers_once(time_skipping_env: WorkflowEnvironment) -> None:
    fake = FakeRecovery({"m1": 900})
    request = RecoveryRequest("m1", "m1:2026-11-25", 0)
    first = await recover(time_skipping_env, fake, request)
    assert [(r.stripe_transfer_id, r.amount, r.status) for r in first] == [
        ("tr_2", 600, "reversed"),
        ("tr_1", 300, "reversed"),
    ]
    again = await recover(time_skipping_env, fake, request)
    assert again == first and fake.calls.count("reverse:tr_2:600") == 1 and fake.deficits == {"m1": 0}


async def test_a_reversal_stripe_refuses_is_recorded_failed_not_retried(time_skipping_env: WorkflowEnvironment) -> None:
    fake = FakeRecovery({"m1": 900}, refused=("tr_1",))
    result = await recover(time_skipping_env, fake, RecoveryRequest("m1", "m1:day", 0))
    assert [(r.status, r.failure_code) for r in result] == [("reversed", None), ("failed", "amount_too_large")]
    assert fake.calls.count("reverse:tr_1:300") == 1 and fake.deficits == {"m1": 300}


async def test_a_run_recovers_every_merchant_in_deficit(time_skipping_env: WorkflowEnvironment) -> None:
    fake = FakeRecovery({"m1": 100, "m2": 0, "m3": 700, "m4": 50})
    queue = f"recovery-run-{fresh_key()}"
    async with Worker(
        time_skipping_env.client,
        task_queue=queue,
        workflows=[RecoveryRunWorkflow, BalanceRecoveryWorkflow],
        activities=fake.activities(),
    ):
        recovered = await time_skipping_env.client.execute_workflow(
            RecoveryRunWorkflow.run,
            RecoveryRunInput(0, page_size=2, day="2026-11-25"),
            id=f"recovery-run-{fresh_key()}",
            task_queue=queue,
        )
    assert recovered == 850 and all(d == 0 for d in fake.deficits.values())
    assert sorted(c for c in fake.calls if c.startswith("plan:")) == ["plan:m1", "plan:m3", "plan:m4"]
