"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from payments.api.address_limit import AddressLimitMiddleware
from payments.api.card_data import CardDataGuardMiddleware
from payments.api.contract import publish_contract
from payments.api.deps import limit_by_ip, require
from payments.api.docs import serve_docs
from payments.api.errors import install_error_handlers
from payments.api.metrics import router as metrics_router
from payments.api.request_context import RequestContextMiddleware
from payments.api.routes import (
    checkout,
    codec,
    disputes,
    health,
    merchant_webhooks,
    parties,
    payments,
    payouts,
    reconciliation,
    refunds,
    saved_cards,
    statements,
    stripe_webhooks,
    timeline,
)
from payments.api.security_headers import AllowedHostsMiddleware, CodecCorsMiddleware, SecurityHeadersMiddleware
from payments.api.services import Services
from payments.config.heap import tune_collector
from payments.config.logs import configure_logging
from payments.config.settings import Settings
from payments.config.tracing import start_tracing, trace_requests

# How uvicorn serves the app: our own access log, no `Server: uvicorn` banner to fingerprint, and
# the C HTTP parser and event loop, named so a missing one fails at start instead of uvicorn falling
# back quietly to h11 and asyncio's loop (about a tenth more CPU per request). uvicorn's own proxy
# headers are off (it trusts 127.0.0.1's X-Forwarded-For by default): PAYMENTS_TRUSTED_PROXIES decides.
UVICORN_OPTIONS: dict[str, Any] = {
    "log_config": None,
    "server_header": False,
    "http": "httptools",
    "loop": "uvloop",
    "proxy_headers": False,
}

DESCRIPTION = """Marketplace payments on Stripe, orchestrated by Temporal.

Every request but health and Stripe's webhooks carries `Authorization: Bearer <JWT>` whose `role`
is `user`, `merchant` or `operator`; each operation names the roles that may call it. Another
party's resource answers 404, exactly like a missing one. Every error is
`{"error": {"code", "message", "request_id"}}`; each operation lists its codes per status.
Amounts are integers in minor units. Card numbers are refused anywhere in a request (400
`card_data_rejected`): send a Stripe token (`tok_…`, `pm_…`)."""


def app_from_environment() -> FastAPI:
    """`payments api`'s app, built in each API process (`--workers N` spawns N of them): settings
    from the environment, and this process's own logging and tracing."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    start_tracing("payments-api", settings.otel_exporter_otlp_endpoint)
    return create_app(settings)


def create_app(settings: Settings) -> FastAPI:
    settings.refuse_unsafe_configuration()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = Services.start(settings)
        tune_collector()
        try:
            yield
        finally:
            await app.state.services.close()

    app = FastAPI(
        title="Payments",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served offline by serve_docs
        redoc_url=None,
        openapi_url="/openapi.json" if settings.api_docs_published else None,
    )
    install_error_handlers(app)
    publish_contract(app)
    if settings.api_docs_published:
        serve_docs(app)
    # A request is matched against the routes in this order: a payment's four requests (init,
    # confirm, Stripe's two webhooks) come first, instead of past a dozen routers (80 µs a webhook).
    app.include_router(payments.router)
    app.include_router(stripe_webhooks.router)
    app.include_router(health.router, dependencies=[Depends(limit_by_ip)])
    app.include_router(codec.router)
    app.include_router(metrics_router, dependencies=[Depends(require("operator"))])  # no public scraping
    app.include_router(parties.router)
    app.include_router(refunds.router)
    app.include_router(saved_cards.router)
    app.include_router(disputes.router)
    app.include_router(timeline.router)
    app.include_router(payouts.router)
    app.include_router(statements.router)
    app.include_router(reconciliation.router)
    app.include_router(merchant_webhooks.router)
    app.include_router(checkout.router)
    app.mount("/checkout/assets", StaticFiles(directory=checkout.ASSETS), name="checkout_assets")

    # Starlette runs the last-added middleware first: request ids wrap everything.
    app.add_middleware(CardDataGuardMiddleware, webhook_secret=settings.stripe_webhook_secret.get_secret_value())
    app.add_middleware(AddressLimitMiddleware, trusted_proxies=settings.trusted_proxies)  # before a body is read
    app.add_middleware(CodecCorsMiddleware, origins=settings.cors_origins)
    app.add_middleware(AllowedHostsMiddleware, hosts=settings.allowed_hosts)
    app.add_middleware(SecurityHeadersMiddleware, hsts_always=settings.env != "development")
    app.add_middleware(RequestContextMiddleware)
    trace_requests(app)
    return app
