"""Frozen dataclasses passed between the API, workflows and activities (one argument each, so
fields can be added without breaking running workflows)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NewMerchant:
    merchant_id: str
    name: str
    payout_schedule: str
    fee_bps: int
    currency: str
    payout_account: str | None = None


@dataclass(frozen=True)
class ConnectedAccountRequest:
    merchant_id: str
    currency: str


@dataclass(frozen=True)
class PayoutAccount:
    merchant_id: str
    account_id: str


@dataclass(frozen=True)
class PaymentRequest:
    """What POST /payments/init asked for; the card token travels only inside encrypted payloads."""

    tx_id: str
    user_id: str
    merchant_id: str
    amount: int
    currency: str
    card_token: str
    idempotency_key: str
    fingerprint: str
    authorization_expiry_seconds: int


@dataclass(frozen=True)
class PaymentView:
    """A payment as the API shows it (the Transaction resource, minus timestamps)."""

    tx_id: str
    user_id: str
    merchant_id: str
    amount: int
    amount_captured: int
    amount_refunded: int
    currency: str
    status: str
    idempotency_key: str
    card_brand: str | None = None
    card_last4: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    replayed: bool = False


@dataclass(frozen=True)
class InitRequest:
    fingerprint: str


@dataclass(frozen=True)
class ConfirmRequest:
    amount: int | None = None


@dataclass(frozen=True)
class AuthorizeRequest:
    tx_id: str
    merchant_id: str
    amount: int
    currency: str
    card_token: str


@dataclass(frozen=True)
class Authorization:
    """Stripe's answer to the authorization: requires_capture, requires_action or declined."""

    payment_intent_id: str
    status: str
    card_brand: str | None = None
    card_last4: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True)
class StatusChange:
    """One status transition of a transaction, written with its outbox event in one DB transaction."""

    tx_id: str
    status: str
    event_type: str | None = None
    payment_intent_id: str | None = None
    card_brand: str | None = None
    card_last4: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True)
class CaptureRequest:
    tx_id: str
    payment_intent_id: str
    amount: int


@dataclass(frozen=True)
class VoidRequest:
    tx_id: str
    payment_intent_id: str
    reason: str


@dataclass(frozen=True)
class StripePaymentEvent:
    """A verified Stripe webhook, signalled to the payment's workflow."""

    event_id: str
    type: str
    payment_intent_id: str
    status: str
    failure_code: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True)
class RefundRequest:
    refund_id: str
    tx_id: str
    amount: int | None
    reason: str | None
    idempotency_key: str


@dataclass(frozen=True)
class RefundView:
    refund_id: str
    tx_id: str
    amount: int
    currency: str
    status: str
    reason: str | None
    payment_intent_id: str
    failure_code: str | None = None


@dataclass(frozen=True)
class StripeRefund:
    refund_id: str
    stripe_refund_id: str


@dataclass(frozen=True)
class RefundFailure:
    refund_id: str
    failure_code: str
