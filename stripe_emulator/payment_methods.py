"""PaymentMethods: Stripe's named test methods (`pm_card_visa`) and cards typed into the card field
(`POST /v1/payment_methods`, which a publishable key may call). A typed number picks the test
behaviour; the PaymentMethod keeps only brand, last4, expiry and a fingerprint, never the number."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from typing import Any

from stripe_emulator.cards import CARDS, TEST_NUMBERS, TestCard
from stripe_emulator.customers import attach_to
from stripe_emulator.emulator import Emulator
from stripe_emulator.listing import retriever
from stripe_emulator.objects import build
from stripe_emulator.store import Obj
from stripe_emulator.wire import StripeError, invalid, missing

# Fingerprints are keyed per emulator process, so a stored fingerprint cannot be reversed to a number
# by hashing the few card numbers there are.
_FINGERPRINT_KEY = secrets.token_bytes(32)


def _card_error(message: str, code: str, param: str) -> StripeError:
    return StripeError(402, "card_error", message, code, param)


def new_card_method(emu: Emulator, test_card: str, **card: Any) -> Obj:
    """A PaymentMethod that behaves as the named test card at confirmation."""
    behaviour = CARDS[test_card]
    method = build("payment_method", "pm", type="card", customer=None, metadata={"emulator_test_card": test_card})
    method["card"].update({"brand": behaviour.brand, "display_brand": behaviour.brand, "last4": behaviour.last4} | card)
    return emu.store.put(method)


def resolve(emu: Emulator, name: str) -> tuple[Obj, TestCard]:
    """A test token (`pm_card_visa`, `tok_visa`) or an earlier pm_ id, as a PaymentMethod."""
    if name in CARDS:
        return new_card_method(emu, name), CARDS[name]
    existing = emu.store.get(name)
    if existing and existing["object"] == "payment_method":
        return existing, CARDS[existing["metadata"]["emulator_test_card"]]
    raise missing("payment_method", name, "payment_method")


def behaviour_of(emu: Emulator, method_id: str | None) -> TestCard:
    """What the test card behind a charge's PaymentMethod does after capture (disputes, refunds)."""
    method = emu.store.get(method_id or "") or {}
    return CARDS[method.get("metadata", {}).get("emulator_test_card", "pm_card_visa")]


def _expiry(card: dict[str, Any]) -> tuple[int, int]:
    try:
        month = int(card.get("exp_month", ""))
    except ValueError:
        raise _card_error(
            "Your card's expiration month is invalid.", "invalid_expiry_month", "card[exp_month]"
        ) from None
    try:
        year = int(card.get("exp_year", ""))
    except ValueError:
        raise _card_error("Your card's expiration year is invalid.", "invalid_expiry_year", "card[exp_year]") from None
    year += 2000 if year < 100 else 0
    if not 1 <= month <= 12:
        raise _card_error("Your card's expiration month is invalid.", "invalid_expiry_month", "card[exp_month]")
    today = time.gmtime()
    if (year, month) < (today.tm_year, today.tm_mon):
        raise _card_error("Your card's expiration year is in the past.", "invalid_expiry_year", "card[exp_year]")
    return month, year


async def create(emu: Emulator, params: dict[str, Any], _: dict[str, str]) -> Obj:
    if params.get("type") != "card":
        raise invalid("Only `type=card` PaymentMethods are emulated.", "parameter_invalid_string", "type")
    card: dict[str, Any] = params.get("card") or {}
    number = re.sub(r"[\s-]", "", str(card.get("number", "")))
    test_card = TEST_NUMBERS.get(number)
    if test_card is None:
        raise _card_error("Your card number is incorrect.", "incorrect_number", "card[number]")
    month, year = _expiry(card)
    if not re.fullmatch(r"\d{3,4}", str(card.get("cvc", ""))):
        raise _card_error("Your card's security code is invalid.", "invalid_cvc", "card[cvc]")
    fingerprint = hmac.new(_FINGERPRINT_KEY, number.encode(), hashlib.sha256).hexdigest()[:16]
    return new_card_method(emu, test_card, last4=number[-4:], exp_month=month, exp_year=year, fingerprint=fingerprint)


retrieve = retriever("payment_method")


def set_up(emu: Emulator, method: Obj, customer_id: str) -> None:
    """The card is saved on the customer with the bank's consent (authenticated if it asked): a
    card that trusts a set-up method pays later without 3-D Secure."""
    method["metadata"]["emulator_set_up"] = "true"
    attach_to(emu, method, customer_id)
    emu.store.put(method)


def asks_to_authenticate(method: Obj, card: TestCard) -> bool:
    """Whether paying with this method meets 3-D Secure."""
    trusted = card.trusted_once_set_up and method["metadata"].get("emulator_set_up") == "true"
    return card.requires_action and not trusted


def to_confirm(name: str | None) -> str:
    """The PaymentMethod a confirmation uses: Stripe refuses one without."""
    if not name:
        raise invalid("You must provide a payment_method to confirm.", "parameter_missing", "payment_method")
    return name
