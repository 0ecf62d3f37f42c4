"""SQLAlchemy 2 tables: the system of record. Changed only through Alembic migrations."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Each status is named once: the database's CHECK constraints and the API's enums both come from here.
TransactionStatus = Literal[
    "pending",
    "requires_action",
    "authorized",
    "declined",
    "confirmed",
    "partially_refunded",
    "refunded",
    "failed",
    "canceled",
]
# Not final: the payment still waits on Stripe, the customer (3-D Secure, or another card after a
# decline) or a confirm. Captured: Stripe has taken the money. Closed: no money moved and none will.
OPEN_PAYMENT_STATUSES: tuple[str, ...] = ("pending", "requires_action", "authorized", "declined")
CAPTURED_PAYMENT_STATUSES: tuple[str, ...] = ("confirmed", "partially_refunded", "refunded")
CLOSED_PAYMENT_STATUSES: tuple[str, ...] = ("canceled", "failed")
RefundStatus = Literal["pending", "succeeded", "failed"]
PayoutStatus = Literal["pending", "in_transit", "paid", "failed"]
PayoutSchedule = Literal["daily", "monthly"]
# Stripe's dispute statuses, all of them: what Stripe says is recorded, never refused.
DisputeStatus = Literal[
    "warning_needs_response",
    "warning_under_review",
    "warning_closed",
    "needs_response",
    "under_review",
    "won",
    "lost",
]
ReversalStatus = Literal["pending", "reversed", "failed"]
ResolutionStatus = Literal["auto_fixed", "needs_review", "resolved"]
ReconciliationRunStatus = Literal["running", "finished"]  # written by payments/activities/reconciliation.py
WebhookEndpointStatus = Literal["enabled", "disabled"]
WebhookDeliveryStatus = Literal["pending", "delivered", "failed"]
SavedCardStatus = Literal["requires_action", "active"]  # requires_action: saved once 3-D Secure passes
TRANSACTION_STATUSES: tuple[str, ...] = get_args(TransactionStatus)
REFUND_STATUSES: tuple[str, ...] = get_args(RefundStatus)
PAYOUT_STATUSES: tuple[str, ...] = get_args(PayoutStatus)
PAYOUT_SCHEDULES: tuple[str, ...] = get_args(PayoutSchedule)
DISPUTE_STATUSES: tuple[str, ...] = get_args(DisputeStatus)
DISPUTE_CLOSED: tuple[str, ...] = ("won", "lost", "warning_closed")
REVERSAL_STATUSES: tuple[str, ...] = get_args(ReversalStatus)
RESOLUTION_STATUSES: tuple[str, ...] = get_args(ResolutionStatus)
WEBHOOK_ENDPOINT_STATUSES: tuple[str, ...] = get_args(WebhookEndpointStatus)
WEBHOOK_DELIVERY_STATUSES: tuple[str, ...] = get_args(WebhookDeliveryStatus)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    pass


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def _updated() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False)


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    # Created at Stripe when the user first saves a card; the cards on file hang off it.
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = _created()


class SavedCard(Base):
    """A card on file: a PaymentMethod attached to the user's Stripe Customer. Only brand, last
    four and expiry are readable; the PaymentMethod id is AES-256-GCM ciphertext, as a payment's
    card token is."""

    __tablename__ = "saved_cards"
    __table_args__ = (
        CheckConstraint(_one_of("status", get_args(SavedCardStatus)), name="status_known"),
        Index("saved_cards_user_created", "user_id", "created_at", "id"),
        Index("saved_cards_one_default", "user_id", unique=True, postgresql_where="is_default"),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(32))
    payment_method: Mapped[bytes] = mapped_column(LargeBinary)
    payment_method_key_id: Mapped[str] = mapped_column(String(64))
    setup_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    brand: Mapped[str] = mapped_column(String(32))
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int] = mapped_column(Integer)
    exp_year: Mapped[int] = mapped_column(Integer)
    is_default: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime] = _created()


class Merchant(Base):
    __tablename__ = "merchants"
    __table_args__ = (
        CheckConstraint(_one_of("payout_schedule", PAYOUT_SCHEDULES), name="payout_schedule_known"),
        CheckConstraint("fee_bps BETWEEN 0 AND 10000", name="fee_bps_range"),
        CheckConstraint("currency ~ '^[a-z]{3}$'", name="currency_iso"),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    payout_account: Mapped[str | None] = mapped_column(String(255), unique=True)
    payout_schedule: Mapped[PayoutSchedule] = mapped_column(String(16))
    fee_bps: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = _created()


class Transaction(Base):
    __tablename__ = "transactions"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="transactions_user_idempotency_key"),
        CheckConstraint(_one_of("status", TRANSACTION_STATUSES), name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("amount_captured BETWEEN 0 AND amount", name="captured_within_amount"),
        CheckConstraint("amount_refunded BETWEEN 0 AND amount_captured", name="refunded_within_captured"),
        CheckConstraint("currency ~ '^[a-z]{3}$'", name="currency_iso"),
        Index("transactions_user_created", "user_id", "created_at", "id"),
        Index("transactions_merchant_created", "merchant_id", "created_at", "id"),
        Index("transactions_status_updated", "status", "updated_at"),
        Index("transactions_created", "created_at", "id"),
        Index("transactions_updated", "updated_at", "id"),
        # The oldest payment of each status not yet final, in one index descent (payments/workers/open_payments.py).
        Index(
            "transactions_open_created",
            "status",
            "created_at",
            postgresql_where=_one_of("status", OPEN_PAYMENT_STATUSES),
        ),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    amount_captured: Mapped[int] = mapped_column(BigInteger, server_default="0")
    amount_refunded: Mapped[int] = mapped_column(BigInteger, server_default="0")
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(32))  # StatusChange carries a str; the CHECK holds it
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    # AES-256-GCM ciphertext of the Stripe token; the key id says which key opens it.
    card_token: Mapped[bytes] = mapped_column(LargeBinary)
    card_token_key_id: Mapped[str] = mapped_column(String(64))
    card_brand: Mapped[str | None] = mapped_column(String(32))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    # Cards tried on this payment's PaymentIntent: 1 at init, one more per card after a decline.
    card_attempts: Mapped[int] = mapped_column(Integer, server_default="1")
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    workflow_id: Mapped[str] = mapped_column(String(512))
    failure_code: Mapped[str | None] = mapped_column(String(128))
    failure_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("tx_id", "idempotency_key", name="refunds_tx_idempotency_key"),
        CheckConstraint(_one_of("status", REFUND_STATUSES), name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("refunds_created", "created_at", "id"),
        Index("refunds_updated", "updated_at", "id"),
        Index("refunds_status_updated", "status", "updated_at"),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tx_id: Mapped[str] = mapped_column(ForeignKey("transactions.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[RefundStatus] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    stripe_refund_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    failure_code: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Payout(Base):
    __tablename__ = "payouts"
    __mapper_args__ = {"eager_defaults": True}  # created_at comes back with the INSERT, for the payout's view
    __table_args__ = (
        UniqueConstraint("merchant_id", "idempotency_key", name="payouts_merchant_idempotency_key"),
        CheckConstraint(_one_of("status", PAYOUT_STATUSES), name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("payouts_merchant_created", "merchant_id", "created_at", "id"),
        Index("payouts_created", "created_at", "id"),
        Index("payouts_updated", "updated_at", "id"),
        Index("payouts_status_updated", "status", "updated_at"),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[PayoutStatus] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))  # on demand only
    stripe_transfer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    failure_code: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Dispute(Base):
    """A dispute at Stripe on one of our payments (a chargeback, or an inquiry that moves no
    money); the money moves in the ledger when Stripe moves it (`dispute:{id}:withdrawal`,
    `dispute:{id}:reinstatement`, at `withdrawn_at` and `reinstated_at`)."""

    __tablename__ = "disputes"
    __table_args__ = (
        CheckConstraint(_one_of("status", DISPUTE_STATUSES), name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("fee >= 0", name="fee_not_negative"),
        Index("disputes_merchant_created", "merchant_id", "created_at", "id"),
        Index("disputes_created", "created_at", "id"),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    stripe_dispute_id: Mapped[str] = mapped_column(String(255), unique=True)
    tx_id: Mapped[str] = mapped_column(ForeignKey("transactions.id"), index=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[int] = mapped_column(BigInteger)  # Stripe's dispute fee, borne by the merchant (0 until withdrawn)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))  # Stripe's word, as read back; the CHECK holds it
    evidence_due_by: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    evidence_text: Mapped[str | None] = mapped_column(Text)
    workflow_id: Mapped[str] = mapped_column(String(512))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reinstated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class TransferReversal(Base):
    """Part of a merchant's deficit taken back from one of its paid payouts (a Stripe transfer
    reversal); planned once per recovery, so a retried recovery reverses nothing twice."""

    __tablename__ = "transfer_reversals"
    __table_args__ = (
        CheckConstraint(_one_of("status", REVERSAL_STATUSES), name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        UniqueConstraint("recovery_id", "payout_id", name="transfer_reversals_recovery_payout"),
        Index("transfer_reversals_merchant_created", "merchant_id", "created_at", "id"),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    recovery_id: Mapped[str] = mapped_column(String(255))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    payout_id: Mapped[str] = mapped_column(ForeignKey("payouts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[ReversalStatus] = mapped_column(String(32))
    stripe_reversal_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    failure_code: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class ReconciliationRun(Base):
    __tablename__ = "reconciliation_runs"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[ReconciliationRunStatus] = mapped_column(String(32))
    # A scheduled run: its window started at the watermark, and its end is the next one's start.
    from_watermark: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    started_at: Mapped[datetime] = _created()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ReconciliationLog(Base):
    __tablename__ = "reconciliation_logs"
    __table_args__ = (
        CheckConstraint(_one_of("resolution_status", RESOLUTION_STATUSES), name="resolution_status_known"),
        Index("reconciliation_logs_status_created", "resolution_status", "created_at", "id"),
        # One open (needs_review) row per discrepancy and subject: a later run finds nothing new.
        Index(
            "reconciliation_logs_open_subject",
            "discrepancy",
            "subject",
            unique=True,
            postgresql_where="resolution_status = 'needs_review'",
        ),
        # Once per run: two slices of a run, or a retried page, may follow the same fix.
        Index("reconciliation_logs_run_subject", "run_id", "discrepancy", "subject", unique=True),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("reconciliation_runs.id"))
    tx_id: Mapped[str | None] = mapped_column(String(64))
    refund_id: Mapped[str | None] = mapped_column(String(64))
    payout_id: Mapped[str | None] = mapped_column(String(64))
    discrepancy: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255), server_default="")  # the Stripe or our id it is about
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    resolution_status: Mapped[ResolutionStatus] = mapped_column(String(32))
    resolution: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(String(255))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created()


class ReconciliationSeen(Base):
    """Scratch: the Stripe ids a run has listed, so our rows Stripe lacks are one anti-join away."""

    __tablename__ = "reconciliation_seen"
    __table_args__ = {"prefixes": ["UNLOGGED"]}
    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    stripe_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    slice: Mapped[int] = mapped_column(SmallInteger, server_default="0")  # the newest slice that checked it


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # e.g. "stripe_clearing", "platform_revenue", "merchant_payable:mer_123"
    code: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = _created()


class LedgerTransaction(Base):
    __tablename__ = "ledger_transactions"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # What this posting is for, e.g. "capture:tx_123"; unique, so a retried posting is a no-op.
    reference: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class LedgerEntry(Base):
    """Debit positive, credit negative. Never updated or deleted (database triggers refuse it)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_nonzero"),
        CheckConstraint("currency ~ '^[a-z]{3}$'", name="currency_iso"),
        Index("ledger_entries_account", "account_id", "currency", "created_at"),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    ledger_transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = _created()


class PayableBalance(Base):
    """A merchant payable's sum of entries, kept by a trigger on every entry posted (migration
    0006): a payout reads it instead of the merchant's whole history. Written only by that trigger."""

    __tablename__ = "payable_balances"
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger)


class PayoutEntry(Base):
    """A merchant-payable ledger entry and the payout that settled it (migration 0010): a payout's
    statement. Written when the payout reserves; a failed payout gives its entries back. Entries
    posted before statements were kept have no payout."""

    __tablename__ = "payout_entries"
    __table_args__ = (Index("payout_entries_payout", "payout_id"),)
    ledger_entry_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # no FK: see migration 0010
    payout_id: Mapped[str | None] = mapped_column(ForeignKey("payouts.id"))


class OutboxEvent(Base):
    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("outbox_events_unpublished", "id", postgresql_where="published_at IS NULL"),
        Index("outbox_events_not_fanned_out", "id", postgresql_where="fanned_out_at IS NULL"),
    )
    # Monotonic: the relay publishes in this order, and consumers dedupe on it.
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    aggregate_id: Mapped[str] = mapped_column(String(64))
    # The subject and the transition (payments/activities/outbox.py): a retried write cannot add a second row.
    event_key: Mapped[str] = mapped_column(String(255), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created()
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set once the merchants' webhook deliveries of this event are started
    # (payments/workers/merchant_webhook_fanout.py).
    fanned_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StripeEvent(Base):
    """Webhook dedupe: a Stripe event id is processed once."""

    __tablename__ = "stripe_events"
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(128))
    object_id: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[datetime] = _created()


class WebhookEndpoint(Base):
    """Where a merchant wants its events. The signing secret is AES-256-GCM ciphertext (the key id
    says which key opens it); after a rotation the previous secret signs too until it expires."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        CheckConstraint(_one_of("status", WEBHOOK_ENDPOINT_STATUSES), name="status_known"),
        Index("webhook_endpoints_merchant_created", "merchant_id", "created_at", "id"),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    url: Mapped[str] = mapped_column(Text)
    enabled_events: Mapped[list[str]] = mapped_column(JSONB)
    status: Mapped[WebhookEndpointStatus] = mapped_column(String(16))
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    secret_key_id: Mapped[str] = mapped_column(String(64))
    previous_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_key_id: Mapped[str | None] = mapped_column(String(64))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The first failed attempt since the last delivered one: failing this long, the endpoint is disabled.
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class WebhookDelivery(Base):
    """One event to one endpoint (one WebhookDeliveryWorkflow)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", name="webhook_deliveries_endpoint_event"),
        CheckConstraint(_one_of("status", WEBHOOK_DELIVERY_STATUSES), name="status_known"),
        Index("webhook_deliveries_merchant_created", "merchant_id", "created_at", "id"),
        Index("webhook_deliveries_event", "event_id"),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("outbox_events.id"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    status: Mapped[WebhookDeliveryStatus] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class WebhookAttempt(Base):
    """One POST of a delivery: when, what came back (no status code: no answer), how long it took,
    and the first kilobyte of the answer (card numbers redacted)."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("webhook_attempts_delivery", "delivery_id", "id"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text, server_default="")
    error: Mapped[str | None] = mapped_column(String(64))  # timeout, connection_error, refused_address
