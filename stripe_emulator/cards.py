"""Stripe's test payment methods and card numbers, and what each one does at confirmation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decline:
    code: str
    decline_code: str
    message: str


@dataclass(frozen=True)
class TestCard:
    brand: str
    last4: str
    decline: Decline | None = None
    requires_action: bool = False  # 3-D Secure when paying
    setup_requires_action: bool = False  # 3-D Secure when saved through a SetupIntent
    trusted_once_set_up: bool = False  # no more 3-D Secure when paying once a setup authenticated it
    disputed: bool = False  # the cardholder disputes the whole amount right after capture
    inquiry: bool = False  # ... as an inquiry (no money moves unless it escalates to a chargeback)
    refund_pending: bool = False  # its refunds stay pending until the control API settles them


_GENERIC = Decline("card_declined", "generic_decline", "Your card was declined.")
_FUNDS = Decline("card_declined", "insufficient_funds", "Your card has insufficient funds.")
_EXPIRED = Decline("expired_card", "expired_card", "Your card has expired.")

CARDS: dict[str, TestCard] = {
    "pm_card_visa": TestCard("visa", "4242"),
    "tok_visa": TestCard("visa", "4242"),
    "pm_card_mastercard": TestCard("mastercard", "4444"),
    "tok_mastercard": TestCard("mastercard", "4444"),
    "pm_card_amex": TestCard("amex", "8431"),
    "pm_card_chargeDeclined": TestCard("visa", "0002", _GENERIC),
    "tok_chargeDeclined": TestCard("visa", "0002", _GENERIC),
    "pm_card_chargeDeclinedInsufficientFunds": TestCard("visa", "9995", _FUNDS),
    "tok_chargeDeclinedInsufficientFunds": TestCard("visa", "9995", _FUNDS),
    "pm_card_chargeDeclinedExpiredCard": TestCard("visa", "0069", _EXPIRED),
    "tok_chargeDeclinedExpiredCard": TestCard("visa", "0069", _EXPIRED),
    "pm_card_authenticationRequired": TestCard("visa", "3184", requires_action=True, setup_requires_action=True),
    "tok_authenticationRequired": TestCard("visa", "3184", requires_action=True),
    # Stripe's 4000 0025 0000 3155: authenticates once when saved, then pays without asking again;
    # 3184 above asks every time, whether saved or not.
    "pm_card_authenticationRequiredOnSetup": TestCard(
        "visa", "3155", requires_action=True, setup_requires_action=True, trusted_once_set_up=True
    ),
    "tok_authenticationRequiredOnSetup": TestCard(
        "visa", "3155", requires_action=True, setup_requires_action=True, trusted_once_set_up=True
    ),
    "pm_card_createDispute": TestCard("visa", "0259", disputed=True),
    "tok_createDispute": TestCard("visa", "0259", disputed=True),
    "pm_card_createDisputeInquiry": TestCard("visa", "1976", disputed=True, inquiry=True),
    "tok_createDisputeInquiry": TestCard("visa", "1976", disputed=True, inquiry=True),
    "pm_card_pendingRefund": TestCard("visa", "7726", refund_pending=True),
    "tok_pendingRefund": TestCard("visa", "7726", refund_pending=True),
}

# Card numbers typed into the card field, by the test payment method whose behaviour they follow.
TEST_NUMBERS: dict[str, str] = {
    "4242424242424242": "pm_card_visa",
    "4000000000009995": "pm_card_chargeDeclinedInsufficientFunds",
    "4000000000000002": "pm_card_chargeDeclined",
    "4000002500003155": "pm_card_authenticationRequiredOnSetup",
    "4000002760003184": "pm_card_authenticationRequired",
    "4000000000000259": "pm_card_createDispute",
    "4000000000001976": "pm_card_createDisputeInquiry",
    "4000000000007726": "pm_card_pendingRefund",
}
