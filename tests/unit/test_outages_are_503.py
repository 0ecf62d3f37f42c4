"""Outages seen in the chaos run as 500s: a connection lost mid-statement while PostgreSQL restarts,
and Temporal refusing more updates on one workflow. Both are "retry shortly", never a bug."""

import asyncpg.exceptions
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError, IntegrityError
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from payments.api.errors import ServiceUnavailable, install_error_handlers
from payments.api.temporal_calls import temporal_calls


async def _get_raising(exc: Exception) -> httpx.Response:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/")
    async def fail() -> None:
        raise exc

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        return await client.get("/")


@pytest.mark.parametrize(
    "exc",
    [
        DBAPIError("COMMIT", {}, Exception("closed"), connection_invalidated=True),
        DBAPIError("SELECT 1", {}, Exception("recovery")),
    ],
    ids=["connection-invalidated", "cannot-connect-now"],
)
async def test_a_lost_database_connection_is_503(exc: DBAPIError) -> None:
    if not exc.connection_invalidated:
        exc.orig.__cause__ = asyncpg.exceptions.CannotConnectNowError("the database system is in recovery mode")  # type: ignore[union-attr]
    response = await _get_raising(exc)
    assert response.status_code == 503 and response.json()["error"]["code"] == "service_unavailable"
    assert response.headers["retry-after"]


async def test_any_other_database_error_is_still_a_500() -> None:
    response = await _get_raising(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert response.status_code == 500 and response.json()["error"]["code"] == "internal_error"


@pytest.mark.parametrize(
    "refusal",
    [
        RPCError("limit on number of concurrent in-flight updates", RPCStatusCode.RESOURCE_EXHAUSTED, b""),
        RPCError(
            "Unable to perform workflow execution update due to Workflow Task in failed state.",
            RPCStatusCode.FAILED_PRECONDITION,
            b"",
        ),
    ],
    ids=["too-many-updates", "workflow-task-failed"],
)
def test_temporal_not_ready_for_an_update_is_503(refusal: RPCError) -> None:
    with pytest.raises(ServiceUnavailable), temporal_calls():
        raise refusal


def test_an_update_nobody_answered_in_time_is_503() -> None:
    with pytest.raises(ServiceUnavailable), temporal_calls():
        raise WorkflowUpdateRPCTimeoutOrCancelledError()
