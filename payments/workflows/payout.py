"""Payouts. MerchantPayoutWorkflow, id `payout:{merchant_id}:{period or key}`: reserve in the
ledger -> Stripe Transfer (payout id as idempotency key) -> mark paid. A refusal at Stripe
compensates by reversing the reserve; after a Stripe success the local write retries until it
lands. PayoutRunWorkflow (started by the `payouts-daily`/`payouts-monthly` Schedules): pages the
merchants of its cadence with money available and pays each through a child, a few at a time,
continuing as new between pages."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from payments.activities.payout_records import PayoutRecords
    from payments.activities.stripe_transfers import StripeTransfers
    from payments.schema.messages import (
        MerchantPageRequest,
        PayoutFailure,
        PayoutRequest,
        PayoutRunInput,
        PayoutRunSummary,
        PayoutView,
        ReserveRequest,
    )
    from payments.workflows import search_attributes as sa
    from payments.workflows.failures import failure_details, final_failure
    from payments.workflows.policies import DB_STEP
    from payments.workflows.stripe_steps import stripe_step

# Nothing was reserved for these: the payout simply does not happen.
REFUSALS = ("InsufficientBalance", "NoPayoutAccount", "UnknownMerchant")


def workflow_id(merchant_id: str, key: str) -> str:
    return f"payout:{merchant_id}:{key}"


def period_of(payout_schedule: str, when: datetime) -> str:
    """`2026-11-24` for a daily run, `2026-11` for a monthly one (UTC)."""
    return when.strftime("%Y-%m" if payout_schedule == "monthly" else "%Y-%m-%d")


@workflow.defn
class MerchantPayoutWorkflow:
    def __init__(self) -> None:
        self._view: PayoutView | None = None
        self._refusal: ApplicationError | None = None

    @workflow.run
    async def run(self, request: PayoutRequest) -> PayoutView | None:
        payout_id = "po_" + workflow.uuid4().hex[:24]
        try:
            view = await workflow.execute_local_activity_method(
                PayoutRecords.reserve_payout, ReserveRequest(payout_id, request), **DB_STEP
            )
        except (ActivityError, ApplicationError) as error:
            refusal = final_failure(error)
            if refusal is None or refusal.type not in REFUSALS:
                raise
            self._refusal = refusal
            await workflow.wait_condition(workflow.all_handlers_finished)  # the API gets its answer
            return None
        self._set_view(view)
        if view.status != "in_transit":
            return view  # this key's payout was settled by an earlier run
        try:
            # On demand, the API waits on `accepted` until the workflow task ends: that answer must
            # not wait on Stripe. A scheduled run's child has no one waiting.
            on_demand = workflow.info().parent is None
            transfer = await stripe_step(StripeTransfers.transfer_payout, view, in_workflow_task=not on_demand)
        except (ActivityError, ApplicationError) as error:  # a local activity raises the latter
            refused = final_failure(error)
            if refused is None:
                raise
            code = failure_details(refused).get("code")
            failure = PayoutFailure(view.payout_id, code or refused.type or "transfer_refused", refused.message)
            self._set_view(await workflow.execute_local_activity_method(PayoutRecords.fail_payout, failure, **DB_STEP))
            return self._view
        # Transferred at Stripe: from here the local write is retried until it lands, never undone.
        self._set_view(
            await workflow.execute_local_activity_method(PayoutRecords.record_payout_paid, transfer, **DB_STEP)
        )
        return self._view

    def _set_view(self, view: PayoutView) -> None:
        self._view = view
        workflow.upsert_search_attributes(
            [
                sa.MERCHANT_ID.value_set(view.merchant_id),
                sa.AMOUNT_MINOR.value_set(view.amount),
                sa.CURRENCY.value_set(view.currency),
                sa.PAYOUT_PERIOD.value_set(view.period),
                sa.PAYOUT_STATUS.value_set(view.status),
            ]
        )

    @workflow.update
    async def accepted(self) -> PayoutView:
        """Answers once the reserve is decided: the payout (in transit), or why there is none."""
        await workflow.wait_condition(lambda: self._view is not None or self._refusal is not None)
        if self._refusal is not None:
            refusal = self._refusal
            raise ApplicationError(refusal.message, *refusal.details, type=refusal.type, non_retryable=True)
        assert self._view is not None
        return self._view

    @workflow.query
    def status(self) -> PayoutView | None:
        return self._view


@workflow.defn
class PayoutRunWorkflow:
    @workflow.run
    async def run(self, run: PayoutRunInput) -> PayoutRunSummary:
        period = run.period or period_of(run.payout_schedule, self._scheduled_time())
        workflow.upsert_search_attributes([sa.PAYOUT_PERIOD.value_set(period)])
        page = await workflow.execute_local_activity_method(
            PayoutRecords.payable_merchants,
            MerchantPageRequest(run.payout_schedule, run.after_merchant_id, run.page_size, run.hold_seconds),
            **DB_STEP,
        )
        progress = dataclasses.replace(
            run,
            period=period,
            after_merchant_id=page[-1] if page else run.after_merchant_id,
            totals=dict(run.totals or {}),
        )
        slots = asyncio.Semaphore(run.concurrency)

        async def pay(merchant_id: str) -> None:
            nonlocal progress
            async with slots:
                try:
                    view = await workflow.execute_child_workflow(
                        MerchantPayoutWorkflow.run,
                        PayoutRequest(merchant_id, period, period, hold_seconds=run.hold_seconds),
                        id=workflow_id(merchant_id, period),
                    )
                except WorkflowAlreadyStartedError:
                    view = None  # another run of this period is paying this merchant right now
                except ChildWorkflowError:
                    workflow.logger.exception("the payout of %s failed", merchant_id)
                    progress = dataclasses.replace(progress, failed=progress.failed + 1)
                    return
            if view is None:
                progress = dataclasses.replace(progress, nothing_to_pay=progress.nothing_to_pay + 1)
            elif view.replayed:
                progress = dataclasses.replace(progress, already_paid=progress.already_paid + 1)
            elif view.status == "paid":
                assert progress.totals is not None
                progress.totals[view.currency] = progress.totals.get(view.currency, 0) + view.amount
                progress = dataclasses.replace(progress, paid=progress.paid + 1)
            else:
                progress = dataclasses.replace(progress, failed=progress.failed + 1)

        await asyncio.gather(*(pay(m) for m in page))
        workflow.upsert_search_attributes(
            [
                sa.PAYOUTS_FAILED.value_set(progress.failed),
                sa.RUN_SUMMARY.value_set(
                    f"paid={progress.paid} failed={progress.failed} already_paid={progress.already_paid}"
                ),
            ]
        )
        if len(page) == run.page_size:
            workflow.continue_as_new(progress)
        return PayoutRunSummary(
            run.payout_schedule,
            period,
            progress.paid,
            progress.failed,
            progress.nothing_to_pay,
            progress.already_paid,
            progress.totals or {},
        )

    @staticmethod
    def _scheduled_time() -> datetime:
        return workflow.info().typed_search_attributes.get(sa.SCHEDULED_START_TIME) or workflow.now()
