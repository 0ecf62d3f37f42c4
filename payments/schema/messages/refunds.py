"""Refunds, asked for by us and settled by Stripe."""

from dataclasses import dataclass


@dataclass(frozen=True)
class RefundRequest:
    refund_id: str
    tx_id: str
    amount: int | None
    reason: str | None
    idempotency_key: str
    read_back_seconds: int = 3600  # how often a refund pending at Stripe is read back


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
    payment_status: str | None = None  # the refunded payment's status once this refund is recorded
    stripe_refund_id: str | None = None  # set once Stripe has accepted it (pending or succeeded)


@dataclass(frozen=True)
class StripeRefund:
    """Stripe's word on a refund: its status as Stripe answered or as read back."""

    refund_id: str
    stripe_refund_id: str
    status: str = "succeeded"  # pending, requires_action, succeeded, failed or canceled
    failure_reason: str | None = None


@dataclass(frozen=True)
class RefundSettlement:
    """Follow a refund Stripe has accepted until Stripe settles it, or read it back once after a
    webhook said it changed (RefundSettlementWorkflow)."""

    refund_id: str
    tx_id: str
    stripe_refund_id: str
    read_back_seconds: int


@dataclass(frozen=True)
class StripeRefundEvent:
    """A verified Stripe refund webhook, signalled to the refund's settlement (a hint to read back)."""

    event_id: str
    type: str
    stripe_refund_id: str


@dataclass(frozen=True)
class RefundFailure:
    refund_id: str
    failure_code: str
