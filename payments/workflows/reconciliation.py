"""ReconciliationWorkflow: one run over a window, phase by phase, a page per activity. Started
every 6 h by the `reconciliation` Schedule (window: from where the last finished scheduled run
ended, the watermark, to the scheduled time) or on demand over a given window; continues as new
every few pages, so its history stays small however big the window. A phase read as slices of the
window (Stripe's lists) runs one activity per slice at once, so any worker on the task queue reads
one: a run is not bound to one worker process."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from payments.activities import reconciliation_slices as slices
    from payments.activities.reconciliation import Reconciler
    from payments.activities.reconciliation_runs import ReconciliationRuns
    from payments.schema.messages import (
        ReconciliationInput,
        ReconciliationPage,
        ReconciliationPageResult,
        ReconciliationProgress,
        ReconciliationTotals,
    )
    from payments.workflows import search_attributes as sa
    from payments.workflows.policies import DB_STEP, RECONCILE_PAGE

PHASES = ("stripe_changes", "our_transactions", "our_refunds", "our_payouts", "ledger", "settlement")
# Runs started before each captured payment was matched three ways (ours, Stripe's, its payout).
PHASES_BEFORE_SETTLEMENT = PHASES[:-1]
# Runs started before reconciliation read changes listed Stripe's objects by creation time
# (replay); before that, runs started before disputes were reconciled.
PHASES_BY_CREATION = (
    "payment_intents",
    "refunds",
    "transfers",
    "disputes",
    "our_transactions",
    "our_refunds",
    "our_payouts",
    "ledger",
)
PHASES_BEFORE_DISPUTES = tuple(p for p in PHASES_BY_CREATION if p != "disputes")
PAGES_PER_RUN = 100  # then continue as new
THREE_WAY_MATCH = "reconcile-settlement"
SLICES_APART = "reconcile-slices-apart"  # before it, one activity read every slice of a page


def workflow_id(run_id: str) -> str:
    """A run asked for by an operator (the API or `payments reconcile`); the Schedule's own runs are
    named by Temporal from the Schedule's action id (payments/workers/schedules.py)."""
    return f"reconciliation:{run_id}"


def _add(counts: dict[str, int], more: dict[str, int]) -> None:
    for key, value in more.items():
        counts[key] = counts.get(key, 0) + value


@workflow.defn
class ReconciliationWorkflow:
    def __init__(self) -> None:
        self._progress = ReconciliationProgress()

    @workflow.run
    async def run(self, job: ReconciliationInput) -> dict[str, int]:
        by_change = workflow.patched("reconcile-by-change")
        opened = False
        if by_change and not (job.window_start and job.window_end and job.run_id):
            job, opened = await self._from_watermark(job), True
        job = self._with_window(job)
        assert job.run_id and job.window_start and job.window_end
        counts = dict(job.counts or {})
        if job.counts is None and not opened:
            page = ReconciliationPage(job.run_id, "open", job.window_start, job.window_end, None)
            await workflow.execute_activity_method(ReconciliationRuns.open_run, page, **DB_STEP)
        phases: tuple[str, ...]
        if by_change:
            phases = PHASES if workflow.patched(THREE_WAY_MATCH) else PHASES_BEFORE_SETTLEMENT
        else:
            phases = PHASES_BY_CREATION if workflow.patched("reconcile-disputes") else PHASES_BEFORE_DISPUTES
        phase, cursor = (job.phase, job.cursor) if job.phase in phases else (phases[0], None)
        self._progress = ReconciliationProgress(phase, 0, dict(counts))  # after continue-as-new: where it got to
        for pages in range(PAGES_PER_RUN):
            page = ReconciliationPage(job.run_id, phase, job.window_start, job.window_end, cursor)
            result = await self._page(page)
            _add(counts, result.counts)
            self._progress = ReconciliationProgress(phase, pages + 1, dict(counts))
            self._publish(counts)
            if result.cursor is not None:
                cursor = result.cursor
                continue
            if phase == phases[-1]:
                break
            phase, cursor = phases[phases.index(phase) + 1], None
        else:
            workflow.continue_as_new(dataclasses.replace(job, phase=phase, cursor=cursor, counts=counts))
        await workflow.execute_activity_method(
            ReconciliationRuns.close_run, ReconciliationTotals(job.run_id, counts), **DB_STEP
        )
        return counts

    @staticmethod
    async def _page(page: ReconciliationPage) -> ReconciliationPageResult:
        """The page's activity; a cursor naming slices, one activity per slice at once."""
        parts = slices.apart(page.cursor)
        if len(parts) < 2 or not workflow.patched(SLICES_APART):
            return await workflow.execute_activity_method(Reconciler.reconcile_page, page, **RECONCILE_PAGE)
        results = await asyncio.gather(
            *(
                workflow.execute_activity_method(
                    Reconciler.reconcile_page, dataclasses.replace(page, cursor=part), **RECONCILE_PAGE
                )
                for part in parts
            )
        )
        counts: dict[str, int] = {}
        for result in results:
            _add(counts, result.counts)
        return ReconciliationPageResult(slices.together([result.cursor for result in results]), counts)

    async def _from_watermark(self, job: ReconciliationInput) -> ReconciliationInput:
        """A scheduled run: its window starts where the last finished one ended (read and stored
        by an activity), so a missed or skipped run leaves no gap."""
        job = self._with_window(job)
        assert job.run_id and job.window_start and job.window_end
        page = ReconciliationPage(job.run_id, "open", job.window_start, job.window_end, None)
        start = await workflow.execute_activity_method(ReconciliationRuns.open_run_from_watermark, page, **DB_STEP)
        return dataclasses.replace(job, window_start=start)

    def _with_window(self, job: ReconciliationInput) -> ReconciliationInput:
        """The window given, or the interval before the scheduled time."""
        if job.window_end and job.window_start and job.run_id:
            return job
        end = self._scheduled_time()
        start = end - timedelta(seconds=job.interval_seconds)
        return dataclasses.replace(
            job,
            run_id=job.run_id or f"rr_{workflow.uuid4().hex[:24]}",
            window_start=job.window_start or start.isoformat(),
            window_end=job.window_end or end.isoformat(),
        )

    @staticmethod
    def _scheduled_time() -> datetime:
        return workflow.info().typed_search_attributes.get(sa.SCHEDULED_START_TIME) or workflow.now()

    @staticmethod
    def _publish(counts: dict[str, int]) -> None:
        workflow.upsert_search_attributes(
            [
                sa.RECON_NEEDS_REVIEW.value_set(counts.get("needs_review", 0)),
                sa.RUN_SUMMARY.value_set(" ".join(f"{k}={v}" for k, v in sorted(counts.items()))),
            ]
        )

    @workflow.query
    def progress(self) -> ReconciliationProgress:
        return self._progress
