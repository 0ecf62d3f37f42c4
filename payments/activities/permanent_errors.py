"""Refusals by the database that no retry can change (a constraint violation, a value PostgreSQL
will not store) become non-retryable activity failures, whatever activity raised them: retrying
forever is kept for what can heal (connections, timeouts, serialization conflicts)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DataError, IntegrityError
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

DATABASE_REFUSED = "DatabaseRefused"


def _refusal(exc: IntegrityError | DataError) -> ApplicationError:
    # asyncpg's error: the cause of SQLAlchemy's adapted one, or the original itself when the
    # statement ran on the driver's connection (payments/schema/driver.py).
    cause = (exc.orig.__cause__ or exc.orig) if exc.orig is not None else None
    details = {"sqlstate": getattr(cause, "sqlstate", None), "constraint": getattr(cause, "constraint_name", None)}
    # The message names the kind of refusal only: the statement's values never reach the history.
    return ApplicationError(
        f"the database refused the write ({type(exc).__name__})", details, type=DATABASE_REFUSED, non_retryable=True
    )


class _PermanentDatabaseErrors(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except (IntegrityError, DataError) as exc:
            raise _refusal(exc) from None


class PermanentDatabaseErrors(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _PermanentDatabaseErrors(next)
