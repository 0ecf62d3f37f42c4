"""Another card after a decline, on the real stack: the same payment and PaymentIntent confirmed
again with a new or saved card and captured, a bounded number of cards, giving up, and who may do it."""

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from payments.config.settings import Settings
from payments.schema.tables import OutboxEvent
from tests.integration.conftest import Parties, stripe_intent


async def _declined(parties: Parties, amount: int = 1000) -> dict[str, Any]:
    tx = await parties.authorized(amount, card="pm_card_chargeDeclined")
    assert tx["status"] == "declined" and tx["failure_code"] == "generic_decline", tx
    return tx


async def _another_card(parties: Parties, tx_id: str, headers: dict | None = None, **method: str) -> httpx.Response:
    body = {"tx_id": tx_id, "payment_method": method}
    return await parties.api.post("/payments/confirm", json=body, headers=headers or parties.as_user)


async def _events(engine: AsyncEngine, tx_id: str) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(OutboxEvent.type).where(OutboxEvent.aggregate_id == tx_id).order_by(OutboxEvent.id)
        )
    return sorted(rows.scalars())


async def test_another_card_pays_the_declined_payment_on_the_same_payment_intent(
    parties: Parties, stack_settings: Settings, emulator_control, engine: AsyncEngine
) -> None:
    tx = await _declined(parties, 1500)
    declined_intent = stripe_intent(stack_settings, tx["id"])
    assert declined_intent.status == "requires_payment_method"

    paid = await _another_card(parties, tx["id"], card_token="pm_card_mastercard")
    assert paid.status_code == 200, paid.text
    body = paid.json()
    assert (body["id"], body["status"], body["amount_captured"]) == (tx["id"], "confirmed", 1500)
    assert body["card"] == {"brand": "mastercard", "last4": "4444"} and body["card_attempts"] == 2
    assert body["failure_code"] is None and "pm_card_mastercard" not in paid.text

    intent = stripe_intent(stack_settings, tx["id"])  # still exactly one PaymentIntent for the payment
    assert intent.id == declined_intent.id and intent.status == "succeeded" and intent.amount_received == 1500
    counters = emulator_control("GET", "/counters").json()
    assert counters["payment_intents.confirm"][intent.id] == 2 and counters["payment_intents.capture"][intent.id] == 1
    events = await _events(engine, tx["id"])
    assert events.count("payment.declined") == 1 and "payment.failed" not in events
    assert {"payment.authorized", "payment.confirmed"} <= set(events)

    again = await _another_card(parties, tx["id"], card_token="pm_card_mastercard")  # a client's repeat
    assert again.status_code == 200 and again.json()["status"] == "confirmed"
    assert emulator_control("GET", "/counters").json()["payment_intents.capture"][intent.id] == 1


async def test_a_saved_card_of_the_payer_pays_and_another_users_is_404(parties: Parties, auth) -> None:
    saved = await parties.api.post(
        f"/users/{parties.user_id}/cards",
        json={"card_token": "pm_card_mastercard", "idempotency_key": "retry-card"},
        headers=parties.as_user,
    )
    assert saved.status_code == 201, saved.text
    operator = auth("operator")
    other = (await parties.api.post("/users", json={"name": "Other"}, headers=operator)).json()["id"]
    as_other = auth("user", other)
    theirs = await parties.api.post(
        f"/users/{other}/cards", json={"card_token": "pm_card_visa", "idempotency_key": "theirs"}, headers=as_other
    )
    tx = await _declined(parties)

    stolen = await _another_card(parties, tx["id"], saved_card_id=theirs.json()["id"])
    assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "not_found"
    assert (await parties.get(tx["id"]))["status"] == "declined"

    paid = await _another_card(parties, tx["id"], saved_card_id=saved.json()["id"])
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "confirmed" and paid.json()["card"]["last4"] == "4444"


async def test_each_decline_is_402_and_the_last_card_fails_the_payment(
    parties: Parties, stack_settings: Settings, engine: AsyncEngine
) -> None:
    tx = await _declined(parties)
    answers = [await _another_card(parties, tx["id"], card_token="pm_card_chargeDeclinedInsufficientFunds")]
    answers.append(await _another_card(parties, tx["id"], card_token="pm_card_chargeDeclinedExpiredCard"))
    assert [a.status_code for a in answers] == [402, 402]
    assert [a.json()["error"]["code"] for a in answers] == ["card_declined", "card_declined"]
    assert [a.json()["error"]["status"] for a in answers] == ["declined", "failed"]
    assert stack_settings.max_card_attempts == 3
    final = await parties.get(tx["id"])
    assert (final["status"], final["failure_code"], final["card_attempts"]) == ("failed", "expired_card", 3)
    events = await _events(engine, tx["id"])
    assert events.count("payment.declined") == 2 and events.count("payment.failed") == 1

    fourth = await _another_card(parties, tx["id"], card_token="pm_card_visa")
    assert fourth.status_code == 409 and fourth.json()["error"]["status"] == "failed"


async def test_another_card_that_needs_3d_secure_answers_where_to_authenticate(
    parties: Parties, stack_settings: Settings, emulator_control
) -> None:
    tx = await _declined(parties)
    action = await _another_card(parties, tx["id"], card_token="pm_card_authenticationRequired")
    assert action.status_code == 200, action.text
    intent = stripe_intent(stack_settings, tx["id"])
    assert action.json()["status"] == "requires_action" and action.json()["client_secret"] == intent.client_secret
    assert action.json()["next_action"]["redirect_to_url"]["url"] == intent.next_action.redirect_to_url.url

    assert emulator_control(
        "POST", f"/payment_intents/{intent.id}/complete_action", json={"outcome": "succeed"}
    ).is_success
    await parties.wait_for_status(tx["id"], "authorized")
    confirmed = await parties.confirm(tx["id"])
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"


async def test_giving_up_on_a_declined_payment_fails_it_and_cancels_the_intent(
    parties: Parties, stack_settings: Settings
) -> None:
    tx = await _declined(parties)
    given_up = await parties.api.post(f"/payments/{tx['id']}/cancel", headers=parties.as_user)
    assert given_up.status_code == 200, given_up.text
    assert (given_up.json()["status"], given_up.json()["failure_code"]) == ("failed", "requested_by_customer")
    again = await parties.api.post(f"/payments/{tx['id']}/cancel", headers=parties.as_user)
    assert again.status_code == 200 and again.json() == given_up.json()
    assert stripe_intent(stack_settings, tx["id"]).status == "canceled"
    late = await _another_card(parties, tx["id"], card_token="pm_card_visa")
    assert late.status_code == 409 and late.json()["error"]["status"] == "failed"


async def test_only_the_payer_gives_another_card_and_only_to_a_declined_payment(parties: Parties, auth) -> None:
    tx = await _declined(parties)
    for headers in (parties.as_merchant, auth("operator")):
        refused = await _another_card(parties, tx["id"], headers=headers, card_token="pm_card_visa")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    authorized = await parties.authorized()
    wrong_state = await _another_card(parties, authorized["id"], card_token="pm_card_mastercard")
    assert wrong_state.status_code == 409 and wrong_state.json()["error"]["status"] == "authorized"
    for method in ({}, {"card_token": "pm_card_visa", "saved_card_id": "card_" + "0" * 32}, {"card_token": "visa"}):
        invalid = await parties.api.post(
            "/payments/confirm", json={"tx_id": tx["id"], "payment_method": method}, headers=parties.as_user
        )
        assert invalid.status_code == 422 and invalid.json()["error"]["code"] == "validation_error", method
    assert (await parties.get(tx["id"]))["status"] == "declined"
