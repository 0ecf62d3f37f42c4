"""The error half of the published contract: each route's `responses=` names the codes it can answer,
all in the one envelope, so the OpenAPI document (and a client generated from it) knows them."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from payments.api.errors import (
    ApiError,
    CardDataRejected,
    ErrorEnvelope,
    Forbidden,
    NestedTooDeep,
    NulCharacter,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
    UnknownHost,
    UnsupportedMediaType,
    ValidationFailed,
)

# What any route can answer before (or instead of) its own logic: the edge guard, request
# validation, the rate limiter, a database or Temporal that is down.
EDGE: tuple[type[ApiError], ...] = (
    UnknownHost,
    CardDataRejected,
    NulCharacter,
    NestedTooDeep,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    RateLimited,
    ServiceUnavailable,
)
AUTHENTICATED: tuple[type[ApiError], ...] = (Unauthorized, Forbidden)
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}}
SCHEMAS = "#/components/schemas/{model}"


def errors(*raised: type[ApiError]) -> dict[int | str, dict[str, Any]]:
    """For a route that needs a bearer token: the edge's errors, 401, 403, and those it raises itself."""
    return public_errors(*AUTHENTICATED, *raised)


def public_errors(*raised: type[ApiError]) -> dict[int | str, dict[str, Any]]:
    """For a route without a token (health, webhooks): the edge's errors and those it raises itself."""
    by_status: dict[int, dict[str, str]] = {}
    for error in (*EDGE, *raised):
        by_status.setdefault(error.status, {})[error.code] = error.message
    return {status: _response(status, codes) for status, codes in sorted(by_status.items())}


def _response(status: int, codes: dict[str, str]) -> dict[str, Any]:
    """The envelope, its `code` narrowed to this status's codes, with one example per code."""
    only_these = {"properties": {"error": {"properties": {"code": {"enum": list(codes)}}}}}
    examples = {
        code: {"summary": message, "value": {"error": {"code": code, "message": message, "request_id": "req_1"}}}
        for code, message in codes.items()
    }
    response: dict[str, Any] = {
        "description": ", ".join(f"`{code}`" for code in codes),
        "content": {
            "application/json": {
                "schema": {"allOf": [{"$ref": SCHEMAS.format(model="ErrorEnvelope")}, only_these]},
                "examples": examples,
            }
        },
    }
    if status in (RateLimited.status, ServiceUnavailable.status):
        response["headers"] = RETRY_AFTER
    return response


def publish_contract(app: FastAPI) -> None:
    """FastAPI's document, plus the envelope schema the error responses refer to."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            envelope = ErrorEnvelope.model_json_schema(ref_template=SCHEMAS)
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(envelope.pop("$defs"), ErrorEnvelope=envelope)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
