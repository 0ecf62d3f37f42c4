"""The API's policy for calls to Temporal: what an unreachable server, a busy workflow or a lost
update answers (503, to be sent again), shared by every route that starts or updates a workflow."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from payments.api.errors import ServiceUnavailable


@contextmanager
def temporal_calls() -> Iterator[None]:
    try:
        yield
    except RPCError as exc:
        if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            raise ServiceUnavailable("Temporal is unreachable; retry shortly.") from exc
        if exc.status == RPCStatusCode.RESOURCE_EXHAUSTED:  # e.g. too many updates waiting on one payment
            raise ServiceUnavailable("Too many requests are waiting on this resource; retry shortly.") from exc
        if exc.status == RPCStatusCode.FAILED_PRECONDITION:  # "Workflow Task in failed state": a worker died
            raise ServiceUnavailable("The payment is being recovered after a worker failure; retry shortly.") from exc
        raise
    except WorkflowUpdateRPCTimeoutOrCancelledError as exc:  # no worker answered within the RPC's deadline
        raise ServiceUnavailable("The request is still being processed; retry with the same key.") from exc


@asynccontextmanager
async def waiting_on_temporal(session: AsyncSession) -> AsyncIterator[None]:
    """Around a call that waits on a workflow (for as long as no worker runs it): the request's
    connection goes back to the pool first, instead of sitting idle in transaction through the wait."""
    await session.commit()  # ends the read transaction; rows already loaded stay readable
    with temporal_calls():
        yield


UPDATE_LOST = "The request was lost on its way to the payment's workflow (a worker restarted); send it again."


async def closed(handle: WorkflowHandle[Any, Any]) -> bool:
    """Whether a workflow has closed (or left Temporal). An update answered NOT_FOUND either because
    its workflow closed or because the server lost it: the server keeps updates that no worker has
    accepted yet in memory, and drops them when a worker dies mid-task; such an update is sent again."""
    try:
        with temporal_calls():
            described = await handle.describe()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        return True
    return described.status != WorkflowExecutionStatus.RUNNING


async def closed_or_lost(handle: WorkflowHandle[Any, Any], exc: RPCError) -> None:
    """After an update's RPCError: return when its workflow has closed (its row is the answer);
    503, to be sent again, when the server lost the update of a running one; else re-raise."""
    if exc.status != RPCStatusCode.NOT_FOUND:
        raise exc
    if not await closed(handle):
        raise ServiceUnavailable(UPDATE_LOST, retry_after=1) from exc
