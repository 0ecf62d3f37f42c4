"""`payments reconcile [--since ISO] [--until ISO]`: run a reconciliation now and watch it."""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, datetime

from temporalio.client import WorkflowHandle

from config.settings import Settings
from schema.messages import ReconciliationInput
from workers.temporal_client import connect
from workflows.reconciliation import PHASES, ReconciliationWorkflow

BAR = 28


def progress_line(progress: dict[str, object]) -> str:
    phase = str(progress.get("phase", PHASES[0]))
    done = PHASES.index(phase) + 1 if phase in PHASES else 0
    filled = BAR * done // len(PHASES)
    return (
        f"[{'#' * filled}{'.' * (BAR - filled)}] {done}/{len(PHASES)} {phase:<16} "
        f"{progress.get('checked', 0)} checked, {progress.get('auto_fixed', 0)} fixed, "
        f"{progress.get('needs_review', 0)} to review"
    )


async def _watch(handle: WorkflowHandle[ReconciliationWorkflow, dict[str, int]]) -> dict[str, int]:
    result = asyncio.ensure_future(handle.result())
    while not result.done():
        await asyncio.wait([result], timeout=0.5)
        if not result.done():
            sys.stdout.write("\r" + progress_line(await handle.query(ReconciliationWorkflow.progress)))
            sys.stdout.flush()
    return result.result()


async def reconcile(settings: Settings, since: datetime | None, until: datetime | None) -> dict[str, int]:
    end = until or datetime.now(UTC)
    start = since or end - settings.reconciliation_interval
    run_id = f"rr_{uuid.uuid4().hex[:24]}"
    client = await connect(settings)
    handle = await client.start_workflow(
        ReconciliationWorkflow.run,
        ReconciliationInput(run_id, start.isoformat(), end.isoformat()),
        id=f"reconciliation:{run_id}",
        task_queue=settings.temporal_task_queue,
    )
    print(f"run {run_id}: {start.isoformat()} .. {end.isoformat()}")
    counts = await _watch(handle)
    print("\r" + progress_line({"phase": PHASES[-1], **counts}))
    return counts
