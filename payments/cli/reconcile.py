"""`payments reconcile [--since ISO] [--until ISO]`: run a reconciliation now and watch it."""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, datetime

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from payments.config.settings import Settings
from payments.config.temporal import connect
from payments.schema.messages import ReconciliationInput, ReconciliationProgress
from payments.workflows.reconciliation import PHASES, ReconciliationWorkflow, workflow_id

BAR = 28


def progress_line(progress: ReconciliationProgress) -> str:
    done = PHASES.index(progress.phase) + 1 if progress.phase in PHASES else 0
    filled = BAR * done // len(PHASES)
    counts = progress.counts
    return (
        f"[{'#' * filled}{'.' * (BAR - filled)}] {done}/{len(PHASES)} {progress.phase:<16} "
        f"{counts.get('events', 0)} changes read, {counts.get('checked', 0)} checked, "
        f"{counts.get('auto_fixed', 0)} fixed, {counts.get('needs_review', 0)} to review"
    )


async def _watch(handle: WorkflowHandle[ReconciliationWorkflow, dict[str, int]], poll_seconds: float) -> dict[str, int]:
    """Redraw the bar until the run closes. One call at a time, each awaited: a call the SDK still
    has in flight when asyncio.run returns completes on a Rust thread into a finalizing interpreter
    (`Fatal Python error: PyGILState_Release`, exit 134; temporalio/sdk-python#300)."""
    while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        sys.stdout.write("\r" + progress_line(await handle.query(ReconciliationWorkflow.progress)))
        sys.stdout.flush()
        await asyncio.sleep(poll_seconds)  # the redraw interval, not a wait for a condition
    return await handle.result()


async def reconcile(
    settings: Settings, since: datetime | None, until: datetime | None, poll_seconds: float
) -> dict[str, int]:
    end = until or datetime.now(UTC)
    start = since or end - settings.reconciliation_interval
    run_id = f"rr_{uuid.uuid4().hex[:24]}"
    client = await connect(settings)
    started = await client.start_workflow(
        ReconciliationWorkflow.run,
        ReconciliationInput(run_id, start.isoformat(), end.isoformat()),
        id=workflow_id(run_id),
        task_queue=settings.temporal_task_queue,
    )
    print(f"run {run_id}: {start.isoformat()} .. {end.isoformat()}")
    # Not pinned to the first run: describe, query and result follow the run's continue-as-new.
    counts = await _watch(client.get_workflow_handle_for(ReconciliationWorkflow.run, started.id), poll_seconds)
    print("\r" + progress_line(ReconciliationProgress(PHASES[-1], 0, counts)))
    return counts
