"""Disputes: their funds, evidence and outcome."""

from dataclasses import dataclass


@dataclass(frozen=True)
class DisputeRequest:
    """Start of a DisputeWorkflow: the dispute a webhook named (read back from Stripe before
    anything moves), and how often to read it back. `fee` is the fixed dispute fee that workflows
    started before Stripe's own fee was read (patch "dispute-funds-from-stripe") posted."""

    stripe_dispute_id: str
    fee: int
    read_back_seconds: int


@dataclass(frozen=True)
class DisputeFunds:
    """One of the dispute's balance transactions at Stripe: the money Stripe moved, and its fee."""

    balance_transaction_id: str
    amount: int  # negative when withdrawn
    fee: int
    net: int


@dataclass(frozen=True)
class StripeDispute:
    """A dispute as Stripe reports it when read back, with the money it moved so far."""

    stripe_dispute_id: str
    payment_intent_id: str | None
    amount: int
    currency: str
    reason: str
    status: str
    evidence_due_by: int  # unix seconds
    withdrawal: DisputeFunds | None = None
    reinstatement: DisputeFunds | None = None


@dataclass(frozen=True)
class DisputeRecord:
    dispute: StripeDispute
    fee: int
    workflow_id: str
    funds_from_stripe: bool = False  # post what Stripe's balance transactions show, not `fee` at once


@dataclass(frozen=True)
class DisputeView:
    dispute_id: str
    stripe_dispute_id: str
    tx_id: str
    merchant_id: str
    amount: int
    fee: int
    currency: str
    reason: str
    status: str
    evidence_due_by: int  # unix seconds
    evidence_text: str | None = None
    withdrawn: bool = False  # the withdrawal (amount and Stripe's fee) is posted
    reinstated: bool = False


@dataclass(frozen=True)
class DisputeEvidence:
    """The merchant's evidence (POST /disputes/{id}/evidence): kept at Stripe, sent to the bank
    when `submit` (or when the deadline comes)."""

    text: str
    submit: bool


@dataclass(frozen=True)
class EvidenceSubmission:
    stripe_dispute_id: str
    text: str
    submit: bool
    sequence: int  # the n-th evidence of this dispute: its Stripe idempotency key


@dataclass(frozen=True)
class DisputeStatusChange:
    dispute_id: str
    status: str
    evidence_text: str | None = None
    stripe: StripeDispute | None = None  # Stripe's dispute read back: its money is posted as it moved


@dataclass(frozen=True)
class StripeDisputeEvent:
    """A verified Stripe dispute webhook, signalled to the dispute's workflow (a hint to read back)."""

    event_id: str
    type: str
    stripe_dispute_id: str
