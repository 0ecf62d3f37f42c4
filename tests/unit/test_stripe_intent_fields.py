"""What the payment activities read off a PaymentIntent's JSON (Stripe's own field names), expanded
or not: the card, Stripe's fee on the captured charge, the 3-D Secure redirect."""

from typing import Any

from payments.activities.stripe_payments import _card, _path, _redirect, _stripe_fee
from payments.schema.messages import RedirectToUrl


def intent(**fields: Any) -> dict[str, Any]:
    return {"id": "pi_1", "object": "payment_intent", "status": "requires_capture"} | fields


def test_the_card_comes_from_the_expanded_payment_method_only() -> None:
    method = {"id": "pm_1", "object": "payment_method", "card": {"brand": "visa", "last4": "4242"}}
    assert _card(intent(payment_method=method)) == ("visa", "4242")
    assert _card(intent(payment_method="pm_1")) == (None, None)  # not expanded
    assert _card(intent(payment_method=None)) == (None, None)
    assert _card(intent(payment_method={"id": "pm_1", "card": None})) == (None, None)  # not a card


def test_stripe_s_fee_comes_from_the_charge_s_expanded_balance_transaction() -> None:
    charge = {"id": "ch_1", "object": "charge", "balance_transaction": {"id": "txn_1", "fee": 59, "net": 941}}
    assert _stripe_fee(intent(status="succeeded", latest_charge=charge)) == 59
    assert _stripe_fee(intent(latest_charge=charge | {"balance_transaction": {"id": "txn_1", "fee": 0}})) == 0
    assert _stripe_fee(intent(latest_charge=charge | {"balance_transaction": "txn_1"})) is None
    assert _stripe_fee(intent(latest_charge=charge | {"balance_transaction": None})) is None
    assert _stripe_fee(intent(latest_charge="ch_1")) is None
    assert _stripe_fee(intent(latest_charge=None)) is None


def test_a_redirect_only_for_redirect_to_url() -> None:
    action = {"type": "redirect_to_url", "redirect_to_url": {"url": "https://hooks.example/3ds", "return_url": None}}
    assert _redirect(intent(status="requires_action", next_action=action)) == RedirectToUrl(
        "https://hooks.example/3ds", None
    )
    assert _redirect(intent(next_action={"type": "use_stripe_sdk", "use_stripe_sdk": {}})) is None
    assert _redirect(intent(next_action=None)) is None
    assert _redirect(intent()) is None


def test_an_intent_s_id_is_one_path_segment() -> None:
    assert _path("pi_1") == "/v1/payment_intents/pi_1"
    assert _path("pi_1", "capture") == "/v1/payment_intents/pi_1/capture"
    assert _path("pi_1/../../v1/transfers") == "/v1/payment_intents/pi_1%2F..%2F..%2Fv1%2Ftransfers"
