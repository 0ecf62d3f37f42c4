"""One exception type per error code, and the handlers that render the one error envelope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import stripe
import structlog
from asyncpg.exceptions import CannotConnectNowError, PostgresConnectionError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from payments.api.request_context import request_id_of
from payments.schema.tables import DisputeStatus, TransactionStatus

log = structlog.get_logger(__name__)
LOST_CONNECTION = (PostgresConnectionError, CannotConnectNowError, OSError)


class ApiError(Exception):
    status = 400
    code = "bad_request"
    message = "The request could not be processed."

    def __init__(
        self, message: str | None = None, *, headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.headers = headers or {}
        self.extra = extra or {}  # more fields for the error object, e.g. a payment's current status


class Unauthorized(ApiError):
    status, code, message = 401, "unauthorized", "A valid bearer token is required."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    status, code, message = 403, "forbidden", "This role may not do that."


class NotFound(ApiError):
    status, code, message = 404, "not_found", "No such resource."


class CurrencyNotAccepted(ApiError):
    status, code = 422, "currency_not_accepted"


class ValidationFailed(ApiError):
    """A body, path, query or header that breaks the published schema (rendered from FastAPI's own error)."""

    status, code, message = 422, "validation_error", "The request is invalid."


class IdempotencyKeyRequired(ApiError):
    status, code = 400, "idempotency_key_required"
    message = "An idempotency_key (body) or Idempotency-Key (header) is required."


class IdempotencyKeyReused(ApiError):
    status, code = 422, "idempotency_key_reused"
    message = "This idempotency key was already used with other parameters."


class PaymentStateConflict(ApiError):
    """The payment's current status does not allow the move; the envelope carries that status."""

    status, code = 409, "payment_state_conflict"

    def __init__(self, current_status: str, message: str | None = None) -> None:
        super().__init__(message or f"The payment is {current_status}.", extra={"status": current_status})


class CardDataRejected(ApiError):
    status, code = 400, "card_data_rejected"
    message = "Card numbers must never be sent to this API; send a Stripe token (tok_…/pm_…) instead."


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"
    message = "The request body must be UTF-8 JSON (without a byte order mark)."


class NestedTooDeep(ApiError):
    status, code, message = 400, "nested_too_deep", "The JSON body is nested deeper than 32 levels."


class NulCharacter(ApiError):
    status, code, message = 400, "nul_character", "The request holds a NUL character."


class UnknownHost(ApiError):
    status, code, message = 400, "unknown_host", "This Host is not one the API answers to."


class PayloadTooLarge(ApiError):
    status, code, message = 413, "payload_too_large", "The request body is too large."


class RateLimited(ApiError):
    status, code, message = 429, "rate_limited", "Too many requests; retry later."

    def __init__(self, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(retry_after)})


class ServiceUnavailable(ApiError):
    status, code = 503, "service_unavailable"

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable and machine-readable; the route's documented codes list each one.")
    message: str = Field(description="For people; never holds a submitted value.")
    request_id: str = Field(description="Also in the X-Request-ID header; quote it to support.")
    status: TransactionStatus | None = Field(default=None, description="payment_state_conflict: the payment's status")
    available: int | None = Field(default=None, description="insufficient_balance: what could be paid out")
    dispute_status: DisputeStatus | None = Field(default=None, description="dispute_not_open: the dispute's status")


class ErrorEnvelope(BaseModel):
    """Every error the API answers, whatever its status."""

    error: ErrorDetail


def refusal_response(scope: Scope, error: ApiError) -> JSONResponse:
    """The envelope for a refusal made by a middleware, before FastAPI's handlers are reached."""
    request_id = scope.get("state", {}).get("request_id", "")
    return JSONResponse(
        {"error": {"code": error.code, "message": error.message, "request_id": request_id}},
        status_code=error.status,
        headers=error.headers,
    )


def envelope(
    request: Request,
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    error = {"code": code, "message": message, "request_id": request_id_of(request), **(extra or {})}
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "The request is invalid."


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return envelope(request, exc.status, exc.code, exc.message, exc.headers, exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The message names fields and rules only: never the submitted values.
        return envelope(request, ValidationFailed.status, ValidationFailed.code, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        message = "No such route." if exc.status_code == 404 else str(exc.detail)
        # The exception's headers carry what the status promises: `Allow` on a 405.
        return envelope(request, exc.status_code, codes.get(exc.status_code, "http_error"), message, exc.headers)

    def database_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database_unavailable", error=type(exc).__name__)
        return envelope(
            request, 503, "service_unavailable", "The database is unavailable; retry shortly.", {"Retry-After": "5"}
        )

    # PostgreSQL unreachable: asyncpg raises OSError on connect, SQLAlchemy wraps the rest.
    for unreachable in (OSError, TimeoutError, OperationalError, InterfaceError, CannotConnectNowError):
        app.add_exception_handler(unreachable, database_down)

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        """A connection lost mid-statement or refused while PostgreSQL recovers is the database being
        down, not a bug; any other database error is unexpected."""
        if exc.connection_invalidated or isinstance(exc.orig.__cause__ if exc.orig else None, LOST_CONNECTION):
            return database_down(request, exc)
        return await _unexpected(request, exc)

    @app.exception_handler(stripe.StripeError)
    async def _stripe_error(request: Request, exc: stripe.StripeError) -> JSONResponse:
        """A call a route makes to Stripe itself (a Customer for a card to keep). No answer, Stripe's
        5xx or rate limit, or the same key's first call still in flight at Stripe (409: a client
        that retried after our 503) is an outage to retry, each such call having its idempotency
        key; any other refusal is unexpected."""
        status = exc.http_status
        if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError) or status in (None, 409) or status >= 500:
            log.warning("stripe_unavailable", error=type(exc.__cause__ or exc).__name__, http_status=status)
            message = "Stripe is unavailable; retry shortly."
            return envelope(request, 503, "service_unavailable", message, {"Retry-After": "5"})
        return await _unexpected(request, exc)

    @app.exception_handler(PoolTimeout)
    async def _database_busy(request: Request, exc: PoolTimeout) -> JSONResponse:
        log.warning("database_pool_exhausted")
        return envelope(
            request, 503, "service_unavailable", "The database is busy; retry shortly.", {"Retry-After": "1"}
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return envelope(request, 500, "internal_error", "An unexpected error occurred.")
