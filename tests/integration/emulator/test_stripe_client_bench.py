"""bench/stripe_client.py measures what it says: each client makes the worker's two calls per
payment (an authorization, then a capture) against Stripe's stand-in."""

import httpx
import pytest

from bench import stripe_client


def _captures(base: str) -> int:
    counters = httpx.get(f"{base}/_emulator/counters", timeout=10).json()
    return int(sum(counters.get("payment_intents.capture", {}).values()))


@pytest.mark.parametrize("name", sorted(stripe_client.CLIENTS))
async def test_each_client_captures_every_payment_it_times(stripe_api_base: str, name: str) -> None:
    before = _captures(stripe_api_base)
    cpu_ms = await stripe_client.cpu_ms_per_payment(stripe_api_base, stripe_client.CLIENTS[name], 3, f"t{name[:5]}")
    assert _captures(stripe_api_base) - before == 3 + stripe_client.WARM_UP
    assert cpu_ms > 0
