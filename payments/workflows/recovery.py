"""Negative balances. BalanceRecoveryWorkflow, id `recovery:{merchant_id}:{day}`: plan, once per
recovery id, reversals of the merchant's latest transfers covering the deficit that has lasted
`PAYMENTS_NEGATIVE_BALANCE_RECOVERY_AFTER` (never more), then reverse each at Stripe (the reversal
id as idempotency key) and record it with its ledger posting; a refusal is recorded, not retried.
RecoveryRunWorkflow (Schedule `negative-balance-recovery`, daily): pages the merchants in deficit
and recovers each through a child, continuing as new between pages."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, ChildWorkflowError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from payments.activities.recovery_records import RecoveryRecords
    from payments.activities.stripe_transfers import StripeTransfers
    from payments.schema.messages import (
        DeficitPageRequest,
        PlannedReversal,
        RecoveryRequest,
        RecoveryRunInput,
        ReversalResult,
    )
    from payments.workflows import search_attributes as sa
    from payments.workflows.failures import failure_details, final_failure
    from payments.workflows.policies import DB_STEP, STRIPE_STEP


def workflow_id(merchant_id: str, day: str) -> str:
    return f"recovery:{merchant_id}:{day}"


@workflow.defn
class BalanceRecoveryWorkflow:
    @workflow.run
    async def run(self, request: RecoveryRequest) -> list[PlannedReversal]:
        workflow.upsert_search_attributes([sa.MERCHANT_ID.value_set(request.merchant_id)])
        plan = await workflow.execute_local_activity_method(RecoveryRecords.plan_recovery, request, **DB_STEP)
        return [await self._reverse(reversal) for reversal in plan]

    async def _reverse(self, reversal: PlannedReversal) -> PlannedReversal:
        if reversal.status != "pending":
            return reversal  # settled by an earlier run of this recovery
        try:
            result = await workflow.execute_activity_method(StripeTransfers.reverse_transfer, reversal, **STRIPE_STEP)
        except ActivityError as error:
            refused = final_failure(error)
            if refused is None:
                raise
            code = failure_details(refused).get("code") or refused.type or "reversal_refused"
            result = ReversalResult(reversal.reversal_id, failure_code=code)
        # Reversed at Stripe (or refused): the local write is retried until it lands.
        return await workflow.execute_local_activity_method(RecoveryRecords.record_reversal, result, **DB_STEP)


@workflow.defn
class RecoveryRunWorkflow:
    @workflow.run
    async def run(self, run: RecoveryRunInput) -> int:
        day = run.day or self._scheduled_time().strftime("%Y-%m-%d")
        page = await workflow.execute_local_activity_method(
            RecoveryRecords.merchants_in_deficit, DeficitPageRequest(run.after_merchant_id, run.page_size), **DB_STEP
        )

        async def recover(merchant_id: str) -> int:
            request = RecoveryRequest(merchant_id, workflow_id(merchant_id, day), run.recovery_after_seconds)
            try:
                reversals = await workflow.execute_child_workflow(
                    BalanceRecoveryWorkflow.run, request, id=request.recovery_id
                )
            except WorkflowAlreadyStartedError:
                return 0  # another run of this day is recovering this merchant right now
            except ChildWorkflowError:
                workflow.logger.exception("the recovery of %s failed", merchant_id)
                return 0
            return sum(r.amount for r in reversals if r.status == "reversed")

        recovered = run.recovered + sum(await asyncio.gather(*(recover(m) for m in page)))
        if len(page) == run.page_size:
            workflow.continue_as_new(dataclasses.replace(run, day=day, after_merchant_id=page[-1], recovered=recovered))
        return recovered

    @staticmethod
    def _scheduled_time() -> datetime:
        return workflow.info().typed_search_attributes.get(sa.SCHEDULED_START_TIME) or workflow.now()
