"""ReconciliationWorkflow's orchestration on the time-skipping server, activities stubbed by name."""

import uuid
from typing import Any

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schema.messages import ReconciliationInput, ReconciliationPage, ReconciliationPageResult, ReconciliationTotals
from workflows.reconciliation import PHASES, ReconciliationWorkflow


class FakeReconciler:
    """Every phase one page with one object checked; records the windows the run was given."""

    def __init__(self) -> None:
        self.pages: list[ReconciliationPage] = []
        self.closed: list[str] = []

    def activities(self) -> list[Any]:
        fake = self

        @activity.defn(name="open_run")
        async def open_run(page: ReconciliationPage) -> None:
            fake.pages.append(page)

        @activity.defn(name="reconcile_page")
        async def reconcile_page(page: ReconciliationPage) -> ReconciliationPageResult:
            fake.pages.append(page)
            return ReconciliationPageResult(None, {"checked": 1})

        @activity.defn(name="close_run")
        async def close_run(totals: ReconciliationTotals) -> None:
            fake.closed.append(totals.run_id)

        return [open_run, reconcile_page, close_run]


async def test_a_run_goes_through_every_phase_and_closes(time_skipping_env: WorkflowEnvironment) -> None:
    fake = FakeReconciler()
    queue = f"recon-{uuid.uuid4().hex}"
    async with Worker(
        time_skipping_env.client, task_queue=queue, workflows=[ReconciliationWorkflow], activities=fake.activities()
    ):
        counts = await time_skipping_env.client.execute_workflow(
            ReconciliationWorkflow.run, ReconciliationInput(), id=f"reconciliation:{queue}", task_queue=queue
        )
    assert counts == {"checked": len(PHASES)}
    assert [p.phase for p in fake.pages[1:]] == list(PHASES) and len(fake.closed) == 1
