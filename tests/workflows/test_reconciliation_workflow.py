"""ReconciliationWorkflow's orchestration on the time-skipping server, activities stubbed by name."""

from typing import Any

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

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
            return ReconciliationPageResult(None, {"checked": 1})

        @activity.defn(name="close_run")
        async def close_run(totals: ReconciliationTotals) -> None:
            fake.closed.append(totals.run_id)

        return [open_run, open_run_from_watermark, reconcile_page, close_run]


async def _run(env: WorkflowEnvironment, fake: FakeReconciler, job: ReconciliationInput) -> dict[str, int]:
    queue = f"recon-{fresh_key()}"
    async with Worker(env.client, task_queue=queue, workflows=[ReconciliationWorkflow], activities=fake.activities()):
        return await env.client.execute_workflow(
            ReconciliationWorkflow.run, job, id=f"reconciliation:{queue}", task_queue=queue
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
