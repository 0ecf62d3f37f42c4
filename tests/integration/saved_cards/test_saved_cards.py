"""Cards on file on the real stack: saved through a SetupIntent on the user's Stripe Customer (3-D
Secure when the bank asks), listed with brand, last four and expiry only, made default, removed
(detached at Stripe); who may see and change them; the PaymentMethod id sealed at rest."""

import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from payments.config.settings import Settings
from payments.schema.tables import SavedCard, User
from tests.integration.conftest import Parties

CARD_FIELDS = {"id", "status", "brand", "last4", "exp_month", "exp_year", "is_default", "client_secret"}


def _stripe(settings: Settings) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_emulator", base_addresses={"api": settings.stripe_api_base})


async def _save(parties: Parties, card: str = "pm_card_visa", key: str = "save-1", headers: dict | None = None):
    body = {"card_token": card, "idempotency_key": key}
    return await parties.api.post(f"/users/{parties.user_id}/cards", json=body, headers=headers or parties.as_user)


async def _cards(parties: Parties, headers: dict | None = None) -> list[dict]:
    response = await parties.api.get(f"/users/{parties.user_id}/cards", headers=headers or parties.as_user)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def _customer(engine: AsyncEngine, user_id: str) -> str:
    async with engine.connect() as conn:
        customer = await conn.scalar(select(User.stripe_customer_id).where(User.id == user_id))
    assert customer is not None
    return customer


async def test_a_saved_card_is_kept_on_one_stripe_customer_and_shows_only_brand_last4_expiry(
    parties: Parties, engine: AsyncEngine, stack_settings: Settings
) -> None:
    first = await _save(parties)
    assert first.status_code == 201, first.text
    card = first.json()
    assert set(card) == CARD_FIELDS and "pm_" not in first.text
    assert (card["status"], card["brand"], card["last4"], card["is_default"]) == ("active", "visa", "4242", True)
    again = await _save(parties)
    assert (
        again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true" and again.json()["id"] == card["id"]
    )
    second = (await _save(parties, "pm_card_mastercard", "save-2")).json()
    assert second["is_default"] is False
    customer = await _customer(engine, parties.user_id)
    at_stripe = _stripe(stack_settings).v1.customers.payment_methods.list(customer).data
    assert sorted(m.card.last4 for m in at_stripe) == ["4242", "4444"]  # one Customer for both saves
    assert [c["last4"] for c in await _cards(parties)] == ["4242", "4444"]
    async with engine.connect() as conn:
        stored = (
            await conn.execute(select(SavedCard.payment_method).where(SavedCard.user_id == parties.user_id))
        ).all()
    assert all(not blob.startswith(b"pm_") and b"pm_" not in blob for (blob,) in stored)


async def test_a_card_that_asks_for_3ds_is_active_once_authenticated(parties: Parties, emulator_control) -> None:
    pending = await _save(parties, "pm_card_authenticationRequiredOnSetup")
    assert pending.status_code == 201
    card = pending.json()
    assert card["status"] == "requires_action" and card["client_secret"].startswith("seti_")
    setup_id = card["client_secret"].split("_secret_")[0]
    assert [c["status"] for c in await _cards(parties)] == ["requires_action"]
    emulator_control("POST", f"/setup_intents/{setup_id}/complete_action", json={"outcome": "succeed"})
    assert [c["status"] for c in await _cards(parties)] == ["active"]


async def test_a_declined_card_is_not_saved(parties: Parties) -> None:
    declined = await _save(parties, "pm_card_chargeDeclined")
    assert declined.status_code == 402 and declined.json()["error"]["code"] == "card_declined"
    assert await _cards(parties) == []


async def test_default_and_removal_reach_stripe(
    parties: Parties, engine: AsyncEngine, stack_settings: Settings
) -> None:
    visa = (await _save(parties)).json()
    master = (await _save(parties, "pm_card_mastercard", "save-2")).json()
    made = await parties.api.post(f"/users/{parties.user_id}/cards/{master['id']}/default", headers=parties.as_user)
    assert made.status_code == 200 and made.json()["is_default"] is True
    assert {c["last4"]: c["is_default"] for c in await _cards(parties)} == {"4242": False, "4444": True}
    client = _stripe(stack_settings)
    customer = client.v1.customers.retrieve(await _customer(engine, parties.user_id))
    default = client.v1.payment_methods.retrieve(customer.invoice_settings.default_payment_method)
    assert default.card.last4 == "4444"
    removed = await parties.api.delete(f"/users/{parties.user_id}/cards/{visa['id']}", headers=parties.as_user)
    assert removed.status_code == 204
    assert [c["last4"] for c in await _cards(parties)] == ["4444"]
    assert [m.card.last4 for m in client.v1.customers.payment_methods.list(customer.id).data] == ["4444"]
    gone = await parties.api.delete(f"/users/{parties.user_id}/cards/{visa['id']}", headers=parties.as_user)
    assert gone.status_code == 404


async def test_who_may_see_and_change_cards(parties: Parties, auth) -> None:
    card = (await _save(parties)).json()
    assert [c["id"] for c in await _cards(parties, auth("operator"))] == [card["id"]]
    for stranger in (parties.as_merchant, auth("user", "usr_other")):
        listed = await parties.api.get(f"/users/{parties.user_id}/cards", headers=stranger)
        assert listed.status_code == 404 and listed.json()["error"]["code"] == "not_found"
    for outsider, code in ((auth("user", "usr_other"), 404), (parties.as_merchant, 403), (auth("operator"), 403)):
        assert (await _save(parties, key="k2", headers=outsider)).status_code == code
        path = f"/users/{parties.user_id}/cards/{card['id']}"
        assert (await parties.api.delete(path, headers=outsider)).status_code == code
        assert (await parties.api.post(f"{path}/default", headers=outsider)).status_code == code
    assert [c["id"] for c in await _cards(parties)] == [card["id"]]
