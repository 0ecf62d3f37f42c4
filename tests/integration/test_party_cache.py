"""User and merchant lookups read through Redis, and a change is seen at once: the worker's write
(a payout account attached by onboarding) leaves a tombstone the API's next read goes past."""

from __future__ import annotations

import json
import re

import httpx
import stripe
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import ActivityEnvironment

from payments.activities.merchants import MerchantActivities
from payments.schema.database import session_factory
from payments.schema.messages import PayoutAccount
from payments.schema.party_cache import PartyCache


async def _lookups(api: httpx.AsyncClient, auth, kind: str, result: str) -> float:
    text = (await api.get("/metrics", headers=auth("operator"))).text
    pattern = rf'^payments_party_cache_lookups_total\{{kind="{kind}",result="{result}"\}} ([0-9.e+]+)$'
    found = re.search(pattern, text, re.MULTILINE)
    return float(found[1]) if found else 0.0


async def _merchant(api: httpx.AsyncClient, auth) -> dict:
    body = {"name": "Cached Shop", "currency": "usd", "fee_bps": 250, "payout_account": "acct_first000"}
    response = await api.post("/merchants", json=body, headers=auth("operator"))
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_payout_account_change_is_seen_at_once(
    api: httpx.AsyncClient, auth, redis: Redis, engine: AsyncEngine, stripe_sdk: stripe.StripeClient
) -> None:
    merchant = await _merchant(api, auth)
    # The keys keep the prefix they had as the directory cache (payments/schema/party_cache.py).
    path, key = f"/merchants/{merchant['id']}", f"directory:merchant:{merchant['id']}"
    assert await redis.get(key) == b"-"  # onboarding's writes left a tombstone: no caching just yet
    await redis.delete(key)  # as when the tombstone expires
    hits_before = await _lookups(api, auth, "merchant", "hit")
    first = await api.get(path, headers=auth("operator"))
    second = await api.get(path, headers=auth("operator"))
    assert first.json() == second.json() == merchant
    cached = await redis.get(key)
    assert cached is not None and json.loads(cached)["payout_account"] == "acct_first000"
    assert await _lookups(api, auth, "merchant", "hit") == hits_before + 1  # the second read came from Redis

    onboarding = MerchantActivities(session_factory(engine), stripe_sdk, PartyCache(redis))
    await ActivityEnvironment().run(
        onboarding.attach_payout_account, PayoutAccount(merchant_id=merchant["id"], account_id="acct_second00")
    )

    after = await api.get(path, headers=auth("operator"))
    assert after.json()["payout_account"] == "acct_second00"
    again = await api.get(path, headers=auth("operator"))  # the tombstone is not replaced by the old row
    assert again.json()["payout_account"] == "acct_second00"


async def test_a_user_created_after_a_miss_can_pay_at_once(api: httpx.AsyncClient, auth, redis: Redis) -> None:
    """Absent rows are not cached: a lookup of an unknown user leaves nothing behind."""
    body = {
        "user_id": "usr_notyetthere",
        "merchant_id": (await _merchant(api, auth))["id"],
        "amount": 500,
        "currency": "usd",
        "card_token": "pm_card_visa",
        "idempotency_key": "k-missing-user",
    }
    refused = await api.post("/payments/init", json=body, headers=auth("user", "usr_notyetthere"))
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "unknown_party"
    assert not await redis.exists("directory:user:usr_notyetthere")
