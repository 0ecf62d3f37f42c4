"""The official Stripe SDK client, pointed at real Stripe or at the local emulator."""

from __future__ import annotations

import aiohttp
import stripe

from payments.config.settings import Settings

EMULATOR_KEY = "sk_test_emulator"


def stripe_http(settings: Settings) -> stripe.AIOHTTPClient:
    """The SDK's aiohttp client, one per process (its connections are kept between calls; close it
    with `close_async()` at shutdown). Every call of ours is async, and aiohttp's C parser costs
    about half of httpx's pure-Python stack a call (docs/capacity.md, session 20)."""
    return stripe.AIOHTTPClient(timeout=aiohttp.ClientTimeout(total=settings.stripe_timeout_seconds))


def stripe_client(settings: Settings, http: stripe.HTTPClient) -> stripe.StripeClient:
    key = settings.stripe_api_key.get_secret_value() if settings.stripe_api_key else EMULATOR_KEY
    # Temporal owns retries (with the same idempotency key), so the SDK must not retry on its own.
    return stripe.StripeClient(
        key,
        base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else None,
        max_network_retries=0,
        http_client=http,
    )
