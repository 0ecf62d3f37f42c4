"""FastAPI dependencies: the services, the caller, rate limiting, a DB session, Temporal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from payments.api.address_limit import limit_address, request_principal
from payments.api.auth import InvalidToken, Principal, Role
from payments.api.errors import Forbidden, RateLimited, ServiceUnavailable, Unauthorized
from payments.api.jwks import KeysUnavailable
from payments.api.services import Services

bearer = HTTPBearer(auto_error=False)


async def get_services(request: Request) -> Services:
    """Async although it awaits nothing: FastAPI runs a plain `def` dependency in its threadpool, a
    thread hop on every request."""
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]


async def _limit(services: Services, caller: str) -> None:
    decision = await services.limiter.take(caller)
    if not decision.allowed:
        raise RateLimited(decision.retry_after)


async def _limit_address(request: Request, services: Services) -> None:
    """The caller's address bucket, charged once per request (AddressLimitMiddleware charges it
    before the body is read when the request has no valid token)."""
    refusal = await limit_address(services, request.scope)
    if refusal is not None:
        raise refusal


async def current_principal(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller; a request without a valid token is limited by its IP before it is refused, so
    guessing tokens costs the same as any other unauthenticated traffic."""
    try:
        if credentials is None:
            raise InvalidToken("no bearer token")
        principal = request_principal(services, request.scope, credentials.credentials)
    except KeysUnavailable:
        raise ServiceUnavailable("Tokens cannot be checked: the identity provider's keys are out of date.") from None
    except InvalidToken:
        await _limit_address(request, services)
        raise Unauthorized("A valid bearer token is required (it may be missing, invalid or expired).") from None
    await _limit(services, f"sub:{principal.role}:{principal.subject}")
    return principal


async def limit_by_ip(request: Request, services: ServicesDep) -> None:
    """For routes without a caller identity (health, webhooks)."""
    await _limit_address(request, services)


def require(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in roles:
            raise Forbidden()
        return principal

    return dependency


async def db_session(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    """A request's session. Closed when the route returns (scope "function"), before the response
    is sent: a request-scoped one would keep its connection idle in transaction while the answer
    goes out."""
    async with services.sessions() as session:
        yield session


async def temporal_client(services: ServicesDep) -> Client:
    try:
        return await services.temporal()
    except Exception as exc:  # connection refused, TLS, DNS: all mean "not reachable now"
        raise ServiceUnavailable("Temporal is unreachable; retry shortly.") from exc


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
Operator = Annotated[Principal, Depends(require("operator"))]
Session = Annotated[AsyncSession, Depends(db_session, scope="function")]
TemporalClient = Annotated[Client, Depends(temporal_client)]
