"""Reconciliation for operators: start a run, list runs and discrepancies, resolve one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, status
from sqlalchemy import select

from payments.api.access import operator_only
from payments.api.contract import errors
from payments.api.deps import CurrentPrincipal, ServicesDep, Session, TemporalClient
from payments.api.errors import ApiError, NotFound
from payments.api.models import (
    ReconciliationLogList,
    ReconciliationLogOut,
    ReconciliationRunCreate,
    ReconciliationRunList,
    ReconciliationRunOut,
    Resolution,
)
from payments.api.pagination import INT64_MAX, InvalidCursor, Limit, newest_first
from payments.api.temporal_calls import temporal_calls
from payments.schema.messages import ReconciliationInput
from payments.schema.tables import ReconciliationLog, ReconciliationRun
from payments.workflows.reconciliation import ReconciliationWorkflow
from payments.workflows.reconciliation import workflow_id as reconciliation_workflow_id

router = APIRouter(tags=["reconciliation"])
# Nothing of ours or Stripe's is older: a window before it can only fail, so it is refused at once.
EARLIEST_WINDOW = datetime(2010, 1, 1, tzinfo=UTC)


class InvalidWindow(ApiError):
    status, code = 422, "invalid_window"
    message = "The window must start after 2010-01-01, end after it starts, and not lie in the future."


class NotOpen(ApiError):
    status, code = 409, "discrepancy_not_open"


def log_out(log: ReconciliationLog) -> ReconciliationLogOut:
    return ReconciliationLogOut.model_validate(log, from_attributes=True)


def run_out(run: ReconciliationRun, workflow_id: str | None = None) -> ReconciliationRunOut:
    return ReconciliationRunOut(
        id=run.id,
        window_start=run.window_start,
        window_end=run.window_end,
        status=run.status,
        counts=run.counts,
        workflow_id=workflow_id,
    )


@router.post(
    "/reconciliation/runs",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start a reconciliation run (operator)",
    responses=errors(InvalidWindow),
)
async def start_run(
    body: ReconciliationRunCreate, principal: CurrentPrincipal, services: ServicesDep, temporal: TemporalClient
) -> ReconciliationRunOut:
    """Compares our rows with Stripe's objects over the window; answers at once, the run goes on."""
    operator_only(principal)
    end = body.window_end or datetime.now(UTC)
    start = body.window_start or end - services.settings.reconciliation_interval
    if not EARLIEST_WINDOW <= start < end <= datetime.now(UTC) + services.settings.reconciliation_interval:
        raise InvalidWindow()
    run_id = f"rr_{uuid.uuid4().hex[:24]}"
    workflow_id = reconciliation_workflow_id(run_id)
    with temporal_calls():
        await temporal.start_workflow(
            ReconciliationWorkflow.run,
            ReconciliationInput(run_id, start.isoformat(), end.isoformat()),
            id=workflow_id,
            task_queue=services.settings.temporal_task_queue,
        )
    run = ReconciliationRun(id=run_id, window_start=start, window_end=end, status="running", counts={})
    return run_out(run, workflow_id)


@router.get("/reconciliation/runs", summary="Reconciliation runs (operator)", responses=errors(InvalidCursor))
async def list_runs(
    principal: CurrentPrincipal,
    session: Session,
    limit: Limit = 20,
    cursor: str | None = None,
) -> ReconciliationRunList:
    """Newest first, with the counts of what each run found."""
    operator_only(principal)
    query = select(ReconciliationRun)
    started, run_id = ReconciliationRun.started_at, ReconciliationRun.id
    page, next_cursor = await newest_first(session, query, started, run_id, limit, cursor)
    return ReconciliationRunList(data=[run_out(r) for r in page], next_cursor=next_cursor)


@router.get("/reconciliation/logs", summary="Discrepancies found (operator)", responses=errors(InvalidCursor))
async def list_logs(
    principal: CurrentPrincipal,
    session: Session,
    status_filter: Annotated[Literal["auto_fixed", "needs_review", "resolved"] | None, Query(alias="status")] = None,
    run_id: str | None = None,
    limit: Limit = 20,
    cursor: str | None = None,
) -> ReconciliationLogList:
    """Discrepancies, newest first."""
    operator_only(principal)
    query = select(ReconciliationLog)
    if status_filter:
        query = query.where(ReconciliationLog.resolution_status == status_filter)
    if run_id:
        query = query.where(ReconciliationLog.run_id == run_id)
    page, next_cursor = await newest_first(
        session, query, ReconciliationLog.created_at, ReconciliationLog.id, limit, cursor
    )
    return ReconciliationLogList(data=[log_out(r) for r in page], next_cursor=next_cursor)


@router.post(
    "/reconciliation/logs/{log_id}/resolve",
    summary="Resolve a discrepancy (operator)",
    responses=errors(NotFound, NotOpen),
)
async def resolve(
    log_id: Annotated[int, Path(ge=1, le=INT64_MAX)], body: Resolution, principal: CurrentPrincipal, session: Session
) -> ReconciliationLogOut:
    """An operator closes a discrepancy, saying what was done; who and when are kept."""
    operator_only(principal)
    async with session.begin():
        log = await session.get(ReconciliationLog, log_id, with_for_update=True)
        if log is None:
            raise NotFound()
        if log.resolution_status != "needs_review":
            raise NotOpen(f"This discrepancy is {log.resolution_status}.")
        log.resolution_status, log.resolution = "resolved", body.resolution
        log.resolved_by, log.resolved_at = principal.subject, datetime.now(UTC)
    return log_out(log)
