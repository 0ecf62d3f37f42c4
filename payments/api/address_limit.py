"""Rate limiting before a body is read: a caller that brings no valid bearer token takes a token
from its client address's bucket here, ahead of the card-data guard that reads and scans the body,
so anonymous traffic cannot buy CPU faster than the limit. A caller with a valid token is limited
per subject later (payments/api/deps.py), as before; its address is not charged, so clients behind one NAT
keep their own buckets. The token verified here is kept in the request's state, so the route's
dependency does not verify it again. Stripe's webhooks from its own addresses
(`PAYMENTS_STRIPE_WEBHOOK_SOURCES`) take from a bucket of their own, sized for Stripe's traffic
at the seed's peak rather than for one anonymous caller."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from payments.api.auth import InvalidToken, Principal
from payments.api.client_address import Network, address_in, client_address
from payments.api.errors import RateLimited, refusal_response
from payments.api.services import Services
from payments.api.stripe_signature import STRIPE_WEBHOOK_PATH

LIMITED = "limited_by_address"  # request state: this request's address bucket was charged
VERIFIED = "verified_principal"  # request state: (token, its principal) when the token verified


def request_principal(services: Services, scope: Scope, token: str) -> Principal:
    """`services.verifier.verify`, once per request for the same token (InvalidToken as it raises)."""
    state = scope.setdefault("state", {})
    verified: tuple[str, Principal] | None = state.get(VERIFIED)
    if verified is not None and verified[0] == token:
        return verified[1]
    principal = services.verifier.verify(token)
    state[VERIFIED] = (token, principal)
    return principal


def _has_valid_token(services: Services, scope: Scope) -> bool:
    header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    try:
        request_principal(services, scope, token.strip())
    except InvalidToken:
        return False
    return True


async def limit_address(services: Services, scope: Scope) -> RateLimited | None:
    """Charge the caller's address once per request; the refusal, if over the limit."""
    state = scope.setdefault("state", {})
    if state.get(LIMITED):
        return None
    state[LIMITED] = True
    address, limiter = state["client_address"], services.limiter
    stripe_webhook = scope["method"] == "POST" and scope["path"] == STRIPE_WEBHOOK_PATH
    if stripe_webhook and address_in(address, services.settings.stripe_webhook_sources):
        limiter = services.stripe_webhook_limiter
    decision = await limiter.take(f"ip:{address}")
    return None if decision.allowed else RateLimited(decision.retry_after)


class AddressLimitMiddleware:
    def __init__(self, app: ASGIApp, trusted_proxies: list[Network]) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["client_address"] = client_address(scope, self.trusted_proxies)
        services: Services = scope["app"].state.services
        if not _has_valid_token(services, scope):
            refusal = await limit_address(services, scope)
            if refusal is not None:
                await refusal_response(scope, refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)
