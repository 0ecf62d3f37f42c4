"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from api.card_data import CardDataGuardMiddleware
from api.deps import limit_by_ip
from api.errors import install_error_handlers
from api.request_context import RequestContextMiddleware
from api.routes import checkout, codec, directory, health, payments, payouts, reconciliation, refunds, webhooks
from api.security_headers import CodecCorsMiddleware, SecurityHeadersMiddleware
from api.services import Services
from config.settings import Settings

# How uvicorn serves the app: our own access log, and no `Server: uvicorn` banner to fingerprint.
UVICORN_OPTIONS: dict[str, Any] = {"log_config": None, "server_header": False}


def create_app(settings: Settings) -> FastAPI:
    settings.refuse_development_secrets()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = Services.start(settings)
        try:
            yield
        finally:
            await app.state.services.close()

    app = FastAPI(
        title="Payments",
        version="0.1.0",
        description="Marketplace payments on Stripe, orchestrated by Temporal.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router, dependencies=[Depends(limit_by_ip)])
    app.include_router(codec.router)
    app.include_router(directory.router)
    app.include_router(payments.router)
    app.include_router(refunds.router)
    app.include_router(payouts.router)
    app.include_router(reconciliation.router)
    app.include_router(webhooks.router)
    app.include_router(checkout.router)
    app.mount("/checkout/assets", StaticFiles(directory=checkout.ASSETS), name="checkout_assets")

    # Starlette runs the last-added middleware first: request ids wrap everything.
    app.add_middleware(CardDataGuardMiddleware, webhook_secret=settings.stripe_webhook_secret.get_secret_value())
    app.add_middleware(CodecCorsMiddleware, origins=settings.cors_origins)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestContextMiddleware)
    return app
