"""The codec server for the Temporal UI: decrypts (and encrypts) payloads for operators."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from payments.api.auth import Principal
from payments.api.contract import errors
from payments.api.deps import ServicesDep, bearer, current_principal
from payments.api.errors import ApiError, Forbidden
from payments.config.keyring import KeyringError

router = APIRouter(prefix="/codec", tags=["codec"])


class UndecodablePayload(ApiError):
    status, code, message = 400, "undecodable_payload", "The payloads could not be decoded with our keys."


async def codec_caller(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal | None:
    """Operators only. `make dev` relaxes this for the local UI, which cannot send a token."""
    if not services.settings.codec_require_auth:
        return None
    principal = await current_principal(request, services, credentials)
    if principal.role != "operator":
        raise Forbidden()
    return principal


Caller = Annotated[Principal | None, Depends(codec_caller)]
PayloadsBody = Annotated[dict[str, Any], Body(examples=[{"payloads": []}])]


async def _apply(body: dict[str, Any], transform: Callable[[Sequence[Payload]], Awaitable[list[Payload]]]):
    try:
        payloads = json_format.ParseDict(body, Payloads())
        result = await transform(list(payloads.payloads))
    except (json_format.ParseError, KeyringError, KeyError, ValueError):
        raise UndecodablePayload() from None
    return json_format.MessageToDict(Payloads(payloads=result))


@router.post("/encode", summary="Encrypt Temporal payloads (operator)", responses=errors(UndecodablePayload))
async def encode(body: PayloadsBody, services: ServicesDep, _: Caller) -> dict[str, Any]:
    return await _apply(body, services.codec.encode)


@router.post(
    "/decode", summary="Decrypt Temporal payloads for the Temporal UI (operator)", responses=errors(UndecodablePayload)
)
async def decode(body: PayloadsBody, services: ServicesDep, _: Caller) -> dict[str, Any]:
    return await _apply(body, services.codec.decode)
