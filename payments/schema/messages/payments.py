"""A payment: init, 3-D Secure, authorize, capture, void, and what Stripe tells of it."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class RedirectToUrl:
    """Stripe's 3-D Secure next action: the page where the customer authenticates, and the page
    (ours) Stripe sends them back to. With the PaymentIntent's client secret it is not card data,
    but it is the customer's alone: never in search attributes or logs."""

    url: str
    return_url: str | None = None


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
    return_url: str | None = None  # where Stripe sends the customer back after 3-D Secure
    # The user's Stripe Customer: a saved card pays only on it; save_card keeps the card there.
    customer_id: str | None = None
    save_card: bool = False
    # Cards this payment may try, the first included (None: a run from before retries, one card).
    max_card_attempts: int | None = None


@dataclass(frozen=True)
class PaymentView:
    """A payment as the API shows it (the Transaction resource)."""

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
    card_attempts: int = 1
    replayed: bool = False
    # While 3-D Secure is pending (init's answer only): what the customer's browser needs.
    client_secret: str | None = None
    redirect: RedirectToUrl | None = None
    # The row's, as written: the API answers init and confirm from the view, without reading the
    # row again (None in a view recorded before they were added: the API reads the row then).
    created_at: datetime | None = None
    updated_at: datetime | None = None


def view_of(tx: Any, replayed: bool = False) -> PaymentView:
    """Of a Transaction, or of a row of its table (an UPDATE's RETURNING): the worker's answer,
    and the API's when it reads the row itself."""
    return PaymentView(
        tx_id=tx.id,
        user_id=tx.user_id,
        merchant_id=tx.merchant_id,
        amount=tx.amount,
        amount_captured=tx.amount_captured,
        amount_refunded=tx.amount_refunded,
        currency=tx.currency,
        status=tx.status,
        idempotency_key=tx.idempotency_key,
        card_brand=tx.card_brand,
        card_last4=tx.card_last4,
        failure_code=tx.failure_code,
        failure_message=tx.failure_message,
        card_attempts=tx.card_attempts,
        replayed=replayed,
        created_at=tx.created_at,
        updated_at=tx.updated_at,
    )


@dataclass(frozen=True)
class InitRequest:
    fingerprint: str


@dataclass(frozen=True)
class AnotherCard:
    """A declined payment's next card: a PaymentMethod or token (a saved card's, opened by the API),
    and the user's Stripe Customer when the card is saved on it."""

    card_token: str
    customer_id: str | None = None


@dataclass(frozen=True)
class ConfirmRequest:
    amount: int | None = None
    card: AnotherCard | None = None  # a declined payment: authorize this card, then capture


@dataclass(frozen=True)
class ReauthorizeRequest:
    """Confirm the payment's PaymentIntent again with another card: attempt n's own Stripe key."""

    tx_id: str
    payment_intent_id: str
    attempt: int
    card: AnotherCard
    return_url: str | None = None


@dataclass(frozen=True)
class AuthorizeRequest:
    tx_id: str
    merchant_id: str
    amount: int
    currency: str
    card_token: str
    return_url: str | None = None
    customer_id: str | None = None
    save_card: bool = False


@dataclass(frozen=True)
class Authorization:
    """Stripe's answer to the authorization: requires_capture, requires_action or declined."""

    payment_intent_id: str
    status: str
    card_brand: str | None = None
    card_last4: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    client_secret: str | None = None
    redirect: RedirectToUrl | None = None  # requires_action: where the customer authenticates


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
    card_attempts: int | None = None


@dataclass(frozen=True)
class CaptureRequest:
    tx_id: str
    payment_intent_id: str
    amount: int
    stripe_fee: int | None = None  # Stripe's fee on the charge, when the capture read it: posted with it


@dataclass(frozen=True)
class StripeCapture:
    """Stripe's answer to a capture: the amount received and the fee on its charge's balance
    transaction (None: Stripe gave none; reconciliation posts it later)."""

    amount: int
    stripe_fee: int | None


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
class PaymentIntentState:
    """A PaymentIntent as Stripe reports it when read back (a webhook is a hint, not the truth)."""

    payment_intent_id: str
    status: str
    failure_code: str | None = None
    failure_message: str | None = None
    amount_received: int = 0


@dataclass(frozen=True)
class StripeAhead:
    """Stripe's word on a payment, to be recorded where our row is behind it (a capture or a void
    our books have not heard of); the failure code is what a cancellation is recorded with."""

    tx_id: str
    intent: PaymentIntentState
    failure_code: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True)
class PaymentCatchUp:
    """A payment Stripe reports moved while its own workflow is gone: read it back, follow it."""

    tx_id: str
    payment_intent_id: str
