"""The official Stripe SDK client, pointed at real Stripe or at the local emulator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
import stripe

from payments.config.settings import Settings

EMULATOR_KEY = "sk_test_emulator"


class StripeHTTP(stripe.AIOHTTPClient):
    """The SDK's aiohttp client (every call of ours is async; aiohttp's C parser costs about two
    thirds of httpx's pure-Python stack a call: docs/capacity.md, session 20), one per process:
    its connections are kept between calls, and `close_async()` closes them at shutdown.

    The SDK reads an answer's body outside its own error handling, so a connection lost or a
    timeout there escaped as aiohttp's or asyncio's exception; it is reported as the SDK's
    APIConnectionError (retryable, an unknown outcome) like every other network failure."""

    def __init__(self, timeout_seconds: float) -> None:
        # As httpx's timeout was: per phase (a connection, then each read), not the whole call.
        super().__init__(timeout=aiohttp.ClientTimeout(connect=timeout_seconds, sock_read=timeout_seconds))

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        try:
            return await super().request_async(method, url, headers, post_data)
        except (aiohttp.ClientError, TimeoutError) as exc:
            message = f"Network error while reading Stripe's answer: {type(exc).__name__}"
            raise stripe.APIConnectionError(message, should_retry=True) from exc


def stripe_http(settings: Settings) -> StripeHTTP:
    return StripeHTTP(settings.stripe_timeout_seconds)


def stripe_client(settings: Settings, http: stripe.HTTPClient) -> stripe.StripeClient:
    key = settings.stripe_api_key.get_secret_value() if settings.stripe_api_key else EMULATOR_KEY
    # Temporal owns retries (with the same idempotency key), so the SDK must not retry on its own.
    return stripe.StripeClient(
        key,
        base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else None,
        max_network_retries=0,
        http_client=http,
    )
