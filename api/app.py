"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.card_data import CardDataGuardMiddleware
from api.deps import limit_by_ip
from api.errors import install_error_handlers
from api.request_context import RequestContextMiddleware
from api.routes import codec, directory, health, payments, payouts, reconciliation, refunds, webhooks
from api.services import Services
from config.settings import Settings


def create_app(settings: Settings) -> FastAPI:
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

    # Starlette runs the last-added middleware first: request ids wrap everything.
    app.add_middleware(CardDataGuardMiddleware, webhook_secret=settings.stripe_webhook_secret.get_secret_value())
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["POST", "GET", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace", "X-Request-ID"],
    )
    app.add_middleware(RequestContextMiddleware)
    return app
