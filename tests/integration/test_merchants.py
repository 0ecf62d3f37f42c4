"""Merchant onboarding end to end: API -> Temporal workflow -> Stripe (emulator) -> PostgreSQL."""

import httpx
import stripe

from payments.config.settings import Settings


async def _create_merchant(api: httpx.AsyncClient, auth, **fields: object) -> dict:
    body = {"name": "Corner Shop", "currency": "usd", "payout_schedule": "monthly", "fee_bps": 250} | fields
    response = await api.post("/merchants", json=body, headers=auth("operator"))
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_new_merchant_gets_a_stripe_connected_account(
    api: httpx.AsyncClient, auth, stack_settings: Settings
) -> None:
    merchant = await _create_merchant(api, auth)
    assert merchant["payout_account"].startswith("acct_")
    client = stripe.StripeClient("sk_test_x", base_addresses={"api": stack_settings.stripe_api_base})
    account = await client.v1.accounts.retrieve_async(merchant["payout_account"])
    assert account.metadata is not None and account.metadata["merchant_id"] == merchant["id"]

    stored = await api.get(f"/merchants/{merchant['id']}", headers=auth("operator"))
    assert stored.json() == merchant


async def test_an_existing_payout_account_is_kept(api: httpx.AsyncClient, auth) -> None:
    merchant = await _create_merchant(api, auth, payout_account="acct_existing123")
    assert merchant["payout_account"] == "acct_existing123"


async def test_a_merchant_sees_itself_and_nobody_else(api: httpx.AsyncClient, auth) -> None:
    mine, theirs = await _create_merchant(api, auth), await _create_merchant(api, auth)
    as_me = auth("merchant", mine["id"])
    assert (await api.get(f"/merchants/{mine['id']}", headers=as_me)).status_code == 200
    other = await api.get(f"/merchants/{theirs['id']}", headers=as_me)
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "not_found"
    assert (await api.get(f"/merchants/{mine['id']}", headers=auth("user", "usr_1"))).status_code == 404
