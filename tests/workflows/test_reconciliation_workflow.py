"""ReconciliationWorkflow's orchestration on the time-skipping server, activities stubbed by name."""

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from payments.activities import reconciliation_slices as slices
from payments.activities.reconciliation_slices import Slice
from payments.schema.messages import (
    ReconciliationInput,
    ReconciliationPage,
    ReconciliationPageResult,
    ReconciliationTotals,
)
from payments.workflows.reconciliation import PHASES, ReconciliationWorkflow
from tests.services import fresh_key

WATERMARK = "2026-11-30T18:00:00+00:00"


class FakeReconciler:
    """Every phase one page with one object checked; records the pages the run asked for. The
    last finished scheduled run ended at WATERMARK."""

    def __init__(self) -> None:
        self.pages: list[ReconciliationPage] = []
        self.closed: list[str] = []

    async def page(self, page: ReconciliationPage) -> ReconciliationPageResult:
        return ReconciliationPageResult(None, {"checked": 1})

    def activities(self) -> list[Any]:
        fake = self

        @activity.defn(name="open_run")
        async def open_run(page: ReconciliationPage) -> None:
            fake.pages.append(page)

        @activity.defn(name="open_run_from_watermark")
        async def open_run_from_watermark(page: ReconciliationPage) -> str:
            fake.pages.append(page)
            return WATERMARK

        @activity.defn(name="reconcile_page")
        async def reconcile_page(page: ReconciliationPage) -> ReconciliationPageResult:
            fake.pages.append(page)
            return await fake.page(page)

        @activity.defn(name="close_run")
        async def close_run(totals: ReconciliationTotals) -> None:
            fake.closed.append(totals.run_id)

        return [open_run, open_run_from_watermark, reconcile_page, close_run]


async def _run(env: WorkflowEnvironment, fake: FakeReconciler, job: ReconciliationInput) -> dict[str, int]:
    queue = f"recon-{fresh_key()}"
    async with Worker(env.client, task_queue=queue, workflows=[ReconciliationWorkflow], activities=fake.activities()):
        return await env.client.execute_workflow(
            ReconciliationWorkflow.run,
            job,
            id=f"reconciliation:{queue}",
            task_queue=queue,
            execution_timeout=timedelta(hours=1),  # in skipped time: a run that cannot finish fails
        )


async def test_a_scheduled_run_starts_where_the_last_finished_one_ended(time_skipping_env: WorkflowEnvironment) -> None:
    fake = FakeReconciler()
    counts = await _run(time_skipping_env, fake, ReconciliationInput())  # as the Schedule starts it
    assert counts == {"checked": len(PHASES)} and len(fake.closed) == 1
    opened, *pages = fake.pages
    assert opened.phase == "open" and opened.window_start < opened.window_end  # the first run's window
    assert [p.phase for p in pages] == list(PHASES)
    assert {(p.window_start, p.window_end) for p in pages} == {(WATERMARK, opened.window_end)}


async def test_a_run_on_demand_keeps_its_window(time_skipping_env: WorkflowEnvironment) -> None:
    fake = FakeReconciler()
    window = ("2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00")
    await _run(time_skipping_env, fake, ReconciliationInput("rr_demand", *window))
    assert {(p.window_start, p.window_end) for p in fake.pages} == {window}
    assert [p.phase for p in fake.pages] == ["open", *PHASES]


SLICED = [Slice(0, 100, 200), Slice(1, 200, 300), Slice(2, 300, 400)]


class SlicedReconciler(FakeReconciler):
    """Stripe's changes and the settlement's balance transactions read as three slices: the first
    page of a phase hands back a cursor naming them; then each slice's activity waits until all
    three are running (read one after the other, they would wait for ever), and slice 1 has a
    second page."""

    def __init__(self) -> None:
        super().__init__()
        self.running: set[int] = set()
        self.all_running = asyncio.Event()

    async def page(self, page: ReconciliationPage) -> ReconciliationPageResult:
        prefix = "payments|" if page.phase == "settlement" else ""
        finished = "transfers" if page.phase == "settlement" else None
        if page.phase not in ("stripe_changes", "settlement") or page.cursor == "transfers":
            return ReconciliationPageResult(None, {"checked": 1})
        if page.cursor is None:
            return ReconciliationPageResult(f"{prefix}{slices.to_cursor(SLICED)}", {"checked": 1})
        (part,) = slices.from_cursor(page.cursor.removeprefix(prefix))
        if part.after is None:  # its first page
            self.running.add(part.index)
            if len(self.running) == len(SLICED):
                self.all_running.set()
            await asyncio.wait_for(self.all_running.wait(), timeout=10)
        if part.index == 1 and part.after is None:
            return ReconciliationPageResult(
                f"{prefix}{slices.to_cursor([Slice(1, 200, 300, 'evt_1')])}", {"checked": 1}
            )
        return ReconciliationPageResult(finished, {"checked": 1})


async def test_a_phase_read_in_slices_runs_an_activity_per_slice_at_once(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """Any worker on the task queue may take a slice: a run is not bound to one process."""
    fake = SlicedReconciler()
    counts = await _run(time_skipping_env, fake, ReconciliationInput("rr_sliced", WATERMARK, WATERMARK))

    for phase, prefix in (("stripe_changes", ""), ("settlement", "payments|")):
        cursors = [p.cursor for p in fake.pages if p.phase == phase]
        assert cursors[0] is None and len(cursors) == 1 + len(SLICED) + 1 + (phase == "settlement")
        read = [slices.from_cursor(c.removeprefix(prefix)) for c in cursors[1:] if c and c.startswith(prefix + "[")]
        assert sorted(read, key=lambda parts: (parts[0].index, parts[0].after or "")) == [
            [SLICED[0]],
            [SLICED[1]],
            [Slice(1, 200, 300, "evt_1")],
            [SLICED[2]],
        ]
    assert cursors[-1] == "transfers"  # the settlement's next pass, once every slice was read
    assert counts == {"checked": len(fake.pages) - 1}  # every page's counts, the open step's aside
