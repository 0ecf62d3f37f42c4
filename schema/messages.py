"""Frozen dataclasses passed between the API, workflows and activities (one argument each, so
fields can be added without breaking running workflows).

No `from __future__ import annotations` here: the Temporal SDK calls typing.get_type_hints on every
conversion of one of these, and string annotations are parsed and evaluated again each time (about
300 µs for PaymentView, a dozen conversions per payment in the worker)."""

from dataclasses import dataclass, field


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
    # While 3-D Secure is pending (init's answer only): what the customer's browser needs.
    client_secret: str | None = None
    redirect: RedirectToUrl | None = None


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
    return_url: str | None = None


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


@dataclass(frozen=True)
class PayoutRequest:
    """Pay `amount` (None: the whole available balance) to a merchant, once per idempotency key
    (the period, for scheduled payouts)."""

    merchant_id: str
    idempotency_key: str
    period: str
    amount: int | None = None
    currency: str | None = None
    hold_seconds: int = 0  # captures younger than this are not yet available
    fingerprint: str | None = None  # on demand: the parameters the key came with


@dataclass(frozen=True)
class PayoutView:
    payout_id: str
    merchant_id: str
    amount: int
    currency: str
    status: str
    period: str
    destination: str
    stripe_transfer_id: str | None = None
    failure_code: str | None = None
    replayed: bool = False  # the key's payout already existed: nothing new was reserved


@dataclass(frozen=True)
class ReserveRequest:
    payout_id: str
    request: PayoutRequest


@dataclass(frozen=True)
class PayoutTransfer:
    payout_id: str
    stripe_transfer_id: str


@dataclass(frozen=True)
class PayoutFailure:
    payout_id: str
    failure_code: str
    failure_message: str | None = None


@dataclass(frozen=True)
class MerchantPageRequest:
    payout_schedule: str
    after_merchant_id: str | None
    limit: int
    hold_seconds: int


@dataclass(frozen=True)
class PayoutRunInput:
    """One run of a cadence. `period` is None when a Schedule starts it (taken from the scheduled
    time); continue-as-new carries the cursor and the totals so far."""

    payout_schedule: str
    concurrency: int
    page_size: int
    hold_seconds: int
    period: str | None = None
    after_merchant_id: str | None = None
    paid: int = 0
    failed: int = 0
    nothing_to_pay: int = 0
    already_paid: int = 0  # by an earlier run of the same period
    totals: dict[str, int] | None = None


@dataclass(frozen=True)
class PayoutRunSummary:
    payout_schedule: str
    period: str
    paid: int
    failed: int
    nothing_to_pay: int
    already_paid: int
    totals: dict[str, int]


@dataclass(frozen=True)
class ReconciliationInput:
    """One run over [window_start, window_end) (ISO 8601, UTC). None: the Schedule's window, from
    the watermark (the interval before the scheduled time for the first run ever) to the scheduled
    time. Continue-as-new carries where it got to and the counts."""

    run_id: str | None = None
    window_start: str | None = None
    window_end: str | None = None
    interval_seconds: int = 6 * 3600  # the Schedule's interval: the first window when none is given
    phase: str = "stripe_changes"
    cursor: str | None = None
    counts: dict[str, int] | None = None


@dataclass(frozen=True)
class ReconciliationPage:
    run_id: str
    phase: str
    window_start: str
    window_end: str
    cursor: str | None


@dataclass(frozen=True)
class ReconciliationTotals:
    run_id: str
    counts: dict[str, int]


@dataclass(frozen=True)
class ReconciliationProgress:
    """What ReconciliationWorkflow's `progress` query answers: typed, so a client can convert it back."""

    phase: str = "stripe_changes"
    pages: int = 0  # done in this run (continue-as-new starts again at 0)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ReconciliationPageResult:
    cursor: str | None  # None: the phase is done
    counts: dict[str, int]


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


@dataclass(frozen=True)
class RecoveryRequest:
    """Recover the part of a merchant's deficit that has lasted `recovery_after_seconds`, by
    reversing its latest transfers. The reversals planned under one `recovery_id` are made once."""

    merchant_id: str
    recovery_id: str
    recovery_after_seconds: int


@dataclass(frozen=True)
class PlannedReversal:
    reversal_id: str
    merchant_id: str
    payout_id: str
    stripe_transfer_id: str
    amount: int
    currency: str
    status: str
    stripe_reversal_id: str | None = None
    failure_code: str | None = None


@dataclass(frozen=True)
class ReversalResult:
    """Stripe's answer: the reversal made (its id), or why it was refused."""

    reversal_id: str
    stripe_reversal_id: str | None = None
    failure_code: str | None = None


@dataclass(frozen=True)
class RecoveryRunInput:
    """One daily run over the merchants in deficit; `day` (None: the scheduled day) names each
    merchant's recovery, so a rerun on the same day reverses nothing twice."""

    recovery_after_seconds: int
    page_size: int
    day: str | None = None
    after_merchant_id: str | None = None
    recovered: int = 0


@dataclass(frozen=True)
class DeficitPageRequest:
    after_merchant_id: str | None
    limit: int


@dataclass(frozen=True)
class WebhookDeliveryRequest:
    """One outbox event to one merchant endpoint, with the retry schedule from the settings at
    the start (a running delivery keeps its own)."""

    delivery_id: str
    endpoint_id: str
    event_id: int
    merchant_id: str
    retry_initial_seconds: float
    retry_max_seconds: float
    retry_for_seconds: float  # then the delivery fails; an endpoint failing this long is disabled
    single_attempt: bool = False  # a manual retry of a finished delivery: one attempt, now


@dataclass(frozen=True)
class WebhookAttemptResult:
    """`delivered` (a 2xx), `retry` (anything else; the attempt is recorded) or `gone` (the endpoint
    was deleted or disabled: nothing more to send)."""

    delivery_id: str
    outcome: str
    status_code: int | None = None


@dataclass(frozen=True)
class WebhookGiveUp:
    delivery_id: str
    endpoint_id: str
    failing_for_seconds: float  # an endpoint failing at least this long is disabled
