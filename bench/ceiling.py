"""The ceiling: PaymentWorkflow's Temporal steps (update-with-start; three local activities, the
middle one Stripe's authorize; a confirm update; two local activities) with no-op activities, on
the same server, data converter and workflow runner. Our throughput as a share of this says how
much time our own activities and API take."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

from payments.workers.registry import workflow_runner

STEP = timedelta(seconds=30)


@activity.defn(name="bench_noop")
async def noop(step: str) -> str:
    return step


@workflow.defn(name="BenchCeilingWorkflow")
class CeilingWorkflow:
    def __init__(self) -> None:
        self._authorized = False
        self._confirmed = False
        self._captured = False

    @workflow.run
    async def run(self) -> str:
        await workflow.execute_local_activity(noop, "record_payment", start_to_close_timeout=STEP)
        await workflow.execute_local_activity(noop, "authorize_payment", start_to_close_timeout=STEP)
        await workflow.execute_local_activity(noop, "record_status", start_to_close_timeout=STEP)
        self._authorized = True
        await workflow.wait_condition(lambda: self._confirmed)
        await workflow.execute_local_activity(noop, "capture_payment", start_to_close_timeout=STEP)
        await workflow.execute_local_activity(noop, "record_capture", start_to_close_timeout=STEP)
        self._captured = True
        return "confirmed"

    @workflow.update
    async def init(self) -> str:
        await workflow.wait_condition(lambda: self._authorized)
        return "authorized"

    @workflow.update
    async def confirm(self) -> str:
        self._confirmed = True
        await workflow.wait_condition(lambda: self._captured)
        return "confirmed"


def ceiling_worker(client: Client, task_queue: str) -> Worker:
    return Worker(
        client, task_queue=task_queue, workflows=[CeilingWorkflow], activities=[noop], workflow_runner=workflow_runner()
    )


async def init(client: Client, task_queue: str) -> str:
    workflow_id = f"bench-ceiling:{uuid.uuid4().hex}"
    start = WithStartWorkflowOperation(
        CeilingWorkflow.run,
        id=workflow_id,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        task_queue=task_queue,
    )
    await client.execute_update_with_start_workflow(CeilingWorkflow.init, start_workflow_operation=start)
    return workflow_id


async def confirm(client: Client, workflow_id: str) -> None:
    await client.get_workflow_handle(workflow_id).execute_update(CeilingWorkflow.confirm)
