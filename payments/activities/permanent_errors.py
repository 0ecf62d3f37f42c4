"""Refusals by the database that no retry can change (a constraint violation, a value PostgreSQL
will not store) become non-retryable activity failures, whatever activity raised them: retrying
forever is kept for what can heal (connections, timeouts, serialization conflicts)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DataError, IntegrityError
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from payments.schema import driver

DATABASE_REFUSED = "DatabaseRefused"


def _refusal(exc: Exception) -> ApplicationError:
    """Of SQLAlchemy's error (asyncpg's is its original's cause) or of asyncpg's own (a statement
    run on the driver's connection, payments/schema/driver.py)."""
    orig = getattr(exc, "orig", None)
    cause = orig.__cause__ if orig is not None else exc
    details = {"sqlstate": getattr(cause, "sqlstate", None), "constraint": getattr(cause, "constraint_name", None)}
    # The message names the kind of refusal only: the statement's values never reach the history.
    return ApplicationError(
        f"the database refused the write ({type(exc).__name__})", details, type=DATABASE_REFUSED, non_retryable=True
    )


class _PermanentDatabaseErrors(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except (IntegrityError, DataError, *driver.PERMANENT) as exc:
            raise _refusal(exc) from None


class PermanentDatabaseErrors(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _PermanentDatabaseErrors(next)
