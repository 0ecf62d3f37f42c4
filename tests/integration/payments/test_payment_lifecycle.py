"""Authorize, capture, void and 3-D Secure through the HTTP API, on the real stack."""

import json
import time
from datetime import datetime

import httpx
from temporalio.client import Client

from payments.config.settings import Settings
from stripe_emulator.webhooks import signature_header
from tests.integration.conftest import Parties, steps_run, stripe_intent
from tests.services import eventually, fresh_key


async def test_happy_path_authorize_then_capture(parties: Parties, stack_settings: Settings, emulator_control) -> None:
    init = await parties.init(1500)
    assert init.status_code == 201
    tx = init.json()
    assert tx["status"] == "authorized" and tx["amount"] == 1500 and tx["amount_captured"] == 0
    assert tx["card"] == {"brand": "visa", "last4": "4242"}
    assert "card_token" not in tx and "pm_card_visa" not in init.text

    confirmed = await parties.confirm(tx["id"])
    assert confirmed.status_code == 200
    assert confirmed.json()["status"] == "confirmed" and confirmed.json()["amount_captured"] == 1500
    assert (await parties.get(tx["id"]))["status"] == "confirmed"

    again = await parties.confirm(tx["id"])
    assert again.status_code == 200 and again.json() == confirmed.json()
    intent = stripe_intent(stack_settings, tx["id"])
    assert intent.status == "succeeded" and intent.amount_received == 1500
    assert emulator_control("GET", "/counters").json()["payment_intents.capture"][intent.id] == 1


async def test_init_and_confirm_answer_the_row_as_written(parties: Parties) -> None:
    """They answer from the workflow's view of the row, timestamps included, not by reading it back."""
    tx = await parties.authorized()
    assert await parties.get(tx["id"]) == tx
    confirmed = await parties.confirm(tx["id"])
    assert confirmed.status_code == 200 and await parties.get(tx["id"]) == confirmed.json()
    assert datetime.fromisoformat(confirmed.json()["updated_at"]) > datetime.fromisoformat(tx["updated_at"])


async def test_a_merchant_and_an_operator_may_confirm_too(parties: Parties, auth) -> None:
    for headers in (parties.as_merchant, auth("operator")):
        tx = await parties.authorized()
        response = await parties.api.post("/payments/confirm", json={"tx_id": tx["id"]}, headers=headers)
        assert response.status_code == 200 and response.json()["status"] == "confirmed"


async def test_a_declined_card_leaves_the_payment_declined_with_stripes_decline_code(parties: Parties) -> None:
    init = await parties.init(card="pm_card_chargeDeclinedInsufficientFunds")
    assert init.status_code == 201
    assert init.json()["status"] == "declined" and init.json()["failure_code"] == "insufficient_funds"
    assert init.json()["failure_message"] and init.json()["card_attempts"] == 1
    confirm = await parties.confirm(init.json()["id"])  # a capture needs another card first
    assert confirm.status_code == 409
    assert confirm.json()["error"]["status"] == "declined"


async def test_3d_secure_completes_through_the_stripe_webhook(
    parties: Parties, stack_settings: Settings, emulator_control
) -> None:
    tx = await parties.authorized(card="pm_card_authenticationRequired")
    assert tx["status"] == "requires_action"
    early = await parties.confirm(tx["id"])
    assert early.status_code == 409 and early.json()["error"]["status"] == "requires_action"

    intent = stripe_intent(stack_settings, tx["id"])
    assert emulator_control(
        "POST", f"/payment_intents/{intent.id}/complete_action", json={"outcome": "succeed"}
    ).is_success
    await parties.wait_for_status(tx["id"], "authorized")
    confirmed = await parties.confirm(tx["id"])
    assert confirmed.json()["status"] == "confirmed"


async def test_3d_secure_init_answers_where_to_authenticate_and_the_banks_page_authorizes(
    parties: Parties, stack_settings: Settings, api_url: str
) -> None:
    tx = await parties.authorized(card="pm_card_authenticationRequired")
    intent = stripe_intent(stack_settings, tx["id"])
    assert tx["status"] == "requires_action" and tx["client_secret"] == intent.client_secret
    assert tx["next_action"] == {
        "type": "redirect_to_url",
        "redirect_to_url": {"url": intent.next_action.redirect_to_url.url, "return_url": f"{api_url}/checkout"},
    }
    page = tx["next_action"]["redirect_to_url"]["url"]
    form = {"payment_intent": intent.id, "payment_intent_client_secret": tx["client_secret"], "outcome": "succeed"}
    async with httpx.AsyncClient() as browser:
        back = await browser.post(page.split("?")[0], data=form)
    assert back.status_code == 303 and back.headers["location"].startswith(f"{api_url}/checkout?")
    await parties.wait_for_status(tx["id"], "authorized")
    assert (await parties.get(tx["id"]))["next_action"] is None
    assert (await parties.confirm(tx["id"])).json()["status"] == "confirmed"


async def test_a_signed_webhook_that_stripe_does_not_bear_out_changes_nothing(
    parties: Parties, stack_settings: Settings, temporal_client: Client, emulator_control
) -> None:
    """The workflow reads the PaymentIntent back before acting: an event is a hint, not the state."""
    tx = await parties.authorized(card="pm_card_authenticationRequired")
    intent = stripe_intent(stack_settings, tx["id"])
    payload = json.dumps(
        {
            "id": f"evt_{fresh_key()}",
            "object": "event",
            "type": "payment_intent.amount_capturable_updated",
            "created": int(time.time()),
            "data": {"object": {"id": intent.id, "object": "payment_intent", "status": "requires_capture"}},
        }
    )
    secret = stack_settings.stripe_webhook_secret.get_secret_value()
    sent = await parties.api.post(
        "/webhooks/stripe", content=payload, headers={"Stripe-Signature": signature_header(payload, secret)}
    )
    assert sent.status_code == 200
    handle = temporal_client.get_workflow_handle(f"payment:{parties.user_id}:{tx['idempotency_key']}")

    async def read_backs() -> int:
        return steps_run(await handle.fetch_history()).count("read_payment_intent")

    await eventually(read_backs, lambda n: n >= 1, "the workflow read the PaymentIntent back")
    assert (await parties.get(tx["id"]))["status"] == "requires_action"
    assert (await parties.confirm(tx["id"])).status_code == 409

    emulator_control("POST", f"/payment_intents/{intent.id}/complete_action", json={"outcome": "succeed"})
    await parties.wait_for_status(tx["id"], "authorized")


async def test_failed_3d_secure_declines_the_payment_and_another_card_may_pay(
    parties: Parties, stack_settings: Settings, emulator_control
) -> None:
    tx = await parties.authorized(card="pm_card_authenticationRequired")
    intent = stripe_intent(stack_settings, tx["id"])
    emulator_control("POST", f"/payment_intents/{intent.id}/complete_action", json={"outcome": "fail"})
    declined = await parties.wait_for_status(tx["id"], "declined")
    assert declined["failure_code"] == "payment_intent_authentication_failure"
    body = {"tx_id": tx["id"], "payment_method": {"card_token": "pm_card_visa"}}
    paid = await parties.api.post("/payments/confirm", json=body, headers=parties.as_user)
    assert paid.status_code == 200 and paid.json()["status"] == "confirmed", paid.text


async def test_partial_capture_and_capture_beyond_the_authorization(parties: Parties) -> None:
    tx = await parties.authorized(1000)
    too_much = await parties.confirm(tx["id"], 1001)
    assert too_much.status_code == 422 and too_much.json()["error"]["code"] == "invalid_capture_amount"
    partial = await parties.confirm(tx["id"], 600)
    assert partial.json()["status"] == "confirmed" and partial.json()["amount_captured"] == 600
    assert partial.json()["amount"] == 1000  # the capture's amount is not written over the authorized one


async def test_cancel_voids_and_a_later_confirm_is_409(parties: Parties, stack_settings: Settings) -> None:
    tx = await parties.authorized()
    canceled = await parties.api.post(f"/payments/{tx['id']}/cancel", headers=parties.as_user)
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    again = await parties.api.post(f"/payments/{tx['id']}/cancel", headers=parties.as_user)
    assert again.status_code == 200 and again.json() == canceled.json()
    confirm = await parties.confirm(tx["id"])
    assert confirm.status_code == 409 and confirm.json()["error"]["status"] == "canceled"
    assert stripe_intent(stack_settings, tx["id"]).status == "canceled"


async def test_a_captured_payment_cannot_be_canceled(parties: Parties) -> None:
    tx = await parties.captured()
    response = await parties.api.post(f"/payments/{tx['id']}/cancel", headers=parties.as_user)
    assert response.status_code == 409 and response.json()["error"]["status"] == "confirmed"
