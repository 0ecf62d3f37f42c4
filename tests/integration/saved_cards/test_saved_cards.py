"""Cards on file on the real stack: saved through a SetupIntent on the user's Stripe Customer (3-D
Secure when the bank asks), listed with brand, last four and expiry only, made default, removed
(detached at Stripe); who may see and change them; the PaymentMethod id sealed at rest."""

from pathlib import Path

import httpx
import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from payments.config.settings import Settings
from payments.schema.tables import SavedCard, User
from tests.integration.conftest import Parties
from tests.services import eventually

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
    assert [(c["status"], c["is_default"]) for c in await _cards(parties)] == [("active", True)]


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


async def _pay(parties: Parties, key: str, headers: dict | None = None, **card) -> httpx.Response:
    body = {k: v for k, v in parties.init_body(key=key).items() if k != "card_token"} | card
    return await parties.api.post("/payments/init", json=body, headers=headers or parties.as_user)


async def test_paying_with_a_saved_card_runs_the_same_saga_on_the_users_customer(
    parties: Parties, auth, stack_settings: Settings
) -> None:
    card = (await _save(parties)).json()
    paid = await _pay(parties, "by-saved-card", saved_card_id=card["id"])
    assert paid.status_code == 201, paid.text
    tx = paid.json()
    assert (tx["status"], tx["card"]["last4"]) == ("authorized", "4242") and "pm_" not in paid.text
    again = await _pay(parties, "by-saved-card", saved_card_id=card["id"])
    assert again.status_code == 200 and again.json()["id"] == tx["id"]  # the same payment
    other = (await _save(parties, "pm_card_mastercard", "save-2")).json()
    reused = await _pay(parties, "by-saved-card", saved_card_id=other["id"])
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"
    intent = _stripe(stack_settings).v1.payment_intents.list(params={"limit": 100}).data
    mine = [i for i in intent if i.metadata.to_dict().get("tx_id") == tx["id"]]
    assert len(mine) == 1 and mine[0].customer is not None
    confirmed = await parties.confirm(tx["id"])
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"


async def test_another_users_saved_card_is_404_and_nothing_is_paid(parties: Parties, auth) -> None:
    card = (await _save(parties)).json()
    operator = auth("operator")
    stranger = (await parties.api.post("/users", json={"name": "Other"}, headers=operator)).json()["id"]
    body = {k: v for k, v in parties.init_body(key="steal").items() if k != "card_token"}
    response = await parties.api.post(
        "/payments/init",
        json=body | {"user_id": stranger, "saved_card_id": card["id"]},
        headers=auth("user", stranger),
    )
    assert response.status_code == 404
    history = await parties.api.get(f"/transactions/{stranger}", headers=auth("user", stranger))
    assert history.json()["data"] == []


async def test_a_saved_card_the_bank_asks_to_authenticate_again_answers_requires_action(
    parties: Parties, emulator_control
) -> None:
    pending = (await _save(parties, "pm_card_authenticationRequired")).json()
    setup_id = pending["client_secret"].split("_secret_")[0]
    emulator_control("POST", f"/setup_intents/{setup_id}/complete_action", json={"outcome": "succeed"})
    assert [c["status"] for c in await _cards(parties)] == ["active"]
    asks = await _pay(parties, "asks-again", saved_card_id=pending["id"])
    assert asks.json()["status"] == "requires_action" and asks.json()["next_action"]["type"] == "redirect_to_url"
    trusted = (await _save(parties, "pm_card_authenticationRequiredOnSetup", "save-3155")).json()
    setup_id = trusted["client_secret"].split("_secret_")[0]
    emulator_control("POST", f"/setup_intents/{setup_id}/complete_action", json={"outcome": "succeed"})
    await _cards(parties)  # refreshes it to active
    assert (await _pay(parties, "trusted", saved_card_id=trusted["id"])).json()["status"] == "authorized"


async def test_save_card_while_paying_keeps_it_once_authorized(parties: Parties) -> None:
    paid = await _pay(parties, "pay-and-save", card_token="pm_card_mastercard", save_card=True)
    assert paid.status_code == 201 and paid.json()["status"] == "authorized"
    cards = await _cards(parties)
    assert [(c["last4"], c["status"], c["is_default"]) for c in cards] == [("4444", "active", True)]
    again = await _pay(parties, "pay-with-kept", saved_card_id=cards[0]["id"])
    assert again.json()["status"] == "authorized"
    declined = await _pay(parties, "declined-save", card_token="pm_card_chargeDeclined", save_card=True)
    assert declined.json()["status"] == "declined" and len(await _cards(parties)) == 1


async def test_init_takes_exactly_one_card(parties: Parties) -> None:
    card = (await _save(parties)).json()
    both = await _pay(parties, "both", card_token="pm_card_visa", saved_card_id=card["id"])
    neither = await _pay(parties, "neither")
    save_saved = await _pay(parties, "save-saved", saved_card_id=card["id"], save_card=True)
    for response in (both, neither, save_saved):
        assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"


async def test_a_token_stripe_does_not_know_or_another_users_card_is_422(
    parties: Parties, auth, engine: AsyncEngine, stack_settings: Settings
) -> None:
    unknown = await _save(parties, "pm_doesnotexist", "unknown")
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_card_token"
    operator = auth("operator")
    stranger = (await parties.api.post("/users", json={"name": "Other"}, headers=operator)).json()["id"]
    theirs = await parties.api.post(
        f"/users/{stranger}/cards",
        json={"card_token": "pm_card_visa", "idempotency_key": "theirs"},
        headers=auth("user", stranger),
    )
    assert theirs.status_code == 201
    client = _stripe(stack_settings)
    their_method = client.v1.customers.payment_methods.list(await _customer(engine, stranger)).data[0].id
    taken = await _save(parties, their_method, "taken")
    assert taken.status_code == 422 and taken.json()["error"]["code"] == "unknown_card_token"
    assert await _cards(parties) == []


async def test_no_payment_method_id_reaches_the_log(parties: Parties, engine: AsyncEngine, log_file: Path) -> None:
    card = (await _save(parties, key="logged")).json()
    paid = await _pay(parties, "logged-pay", saved_card_id=card["id"])
    assert paid.json()["status"] == "authorized"
    await parties.api.delete(f"/users/{parties.user_id}/cards/{card['id']}", headers=parties.as_user)
    logs = log_file.read_text()
    assert card["id"] in logs  # the requests were logged ...
    assert "pm_" not in logs and "seti_" not in logs  # ... without a PaymentMethod or SetupIntent id


async def test_a_card_saved_while_paying_after_3ds_joins_the_cards_once_authenticated(
    parties: Parties, emulator_control, stack_settings: Settings
) -> None:
    paid = await _pay(parties, "save-after-3ds", card_token="pm_card_authenticationRequiredOnSetup", save_card=True)
    tx = paid.json()
    assert tx["status"] == "requires_action" and await _cards(parties) == []
    intent_id = tx["client_secret"].split("_secret_")[0]
    emulator_control("POST", f"/payment_intents/{intent_id}/complete_action", json={"outcome": "succeed"})
    await parties.wait_for_status(tx["id"], "authorized")
    cards = await _cards(parties)
    assert [(c["last4"], c["status"], c["is_default"]) for c in cards] == [("3155", "active", True)]
    assert await _cards(parties) == cards  # listed again: the same one card
    again = await _pay(parties, "pay-after-3ds-save", saved_card_id=cards[0]["id"])
    assert again.json()["status"] == "authorized"  # set up once, this card pays without 3-D Secure


async def test_stripe_unavailable_is_503_until_the_same_request_saves_the_card_on_one_customer(
    parties: Parties, engine: AsyncEngine, stack_settings: Settings, emulator_control
) -> None:
    """The user's first card: its Customer is made by the route itself. Stripe answering slower than
    our timeout is 503 in the envelope, and so is the same request sent again while that first
    call is still in flight at Stripe (its idempotency key, 409 there); never a 500. Once Stripe is
    done, the same request saves the card on one Customer."""
    slow_ms = int(stack_settings.stripe_timeout_seconds * 2000)
    slow = {"action": "latency", "path": "/v1/customers", "latency_ms": slow_ms}
    fault = emulator_control("POST", "/faults", json=slow).json()
    try:
        refused = await _save(parties)
    finally:
        emulator_control("DELETE", f"/faults/{fault['id']}")
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "service_unavailable" and refused.headers["Retry-After"] == "5"
    saved = await eventually(lambda: _save(parties), lambda r: r.status_code != 503, "Stripe's first call to end")
    assert saved.status_code == 201, saved.text
    assert [c["id"] for c in await _cards(parties)] == [saved.json()["id"]]
    created = _stripe(stack_settings).v1.events.list(params={"type": "customer.created", "limit": 100})
    theirs = [
        e.data.object.id for e in created.data if e.data.object.metadata.to_dict().get("user_id") == parties.user_id
    ]
    assert theirs == [await _customer(engine, parties.user_id)]
    in_flight = emulator_control("GET", "/counters").json().get("idempotency.in_flight", {})
    assert in_flight.get(f"{parties.user_id}:customer", 0) >= 1  # a retry met Stripe's first call still running
