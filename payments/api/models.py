"""Request and response bodies of the HTTP API (the resource shapes of docs/design.md)."""

from __future__ import annotations

from typing import Any, Literal, cast

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from payments.schema.messages import PayoutView
from payments.schema.tables import (
    Dispute,
    DisputeStatus,
    Payout,
    PayoutSchedule,
    PayoutStatus,
    ReconciliationRunStatus,
    RefundStatus,
    ResolutionStatus,
    SavedCardStatus,
    TransactionStatus,
    WebhookDeliveryStatus,
    WebhookEndpointStatus,
)

Currency = Field(pattern=r"^[a-z]{3}$", examples=["usd"])
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"  # names: no NUL, no control characters
# Our ids: their prefix and word characters only, since they end up in workflow ids and Redis keys.
USER_ID, MERCHANT_ID, TX_ID = (rf"^{prefix}_[A-Za-z0-9]{{1,60}}$" for prefix in ("usr", "mer", "tx"))
SAVED_CARD_ID = r"^card_[0-9a-f]{32}$"


class Strict(BaseModel):
    """A request body: unknown fields refused; numbers are StrictInt, so `true`, `1.0`, `"100"` are too."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def example(**body: Any) -> ConfigDict:
    """A request body's example for the docs (and the hostile suite's card-number vectors)."""
    return examples(body)


def examples(*bodies: dict[str, Any]) -> ConfigDict:
    """A request body's examples, one per shape it takes."""
    return ConfigDict(json_schema_extra={"examples": list(bodies)})  # merged with Strict's config


class UserCreate(Strict):
    model_config = example(name="Ada Lovelace")
    name: str = Field(min_length=1, max_length=200, pattern=PRINTABLE)


class UserOut(BaseModel):
    id: str
    name: str


class MerchantCreate(Strict):
    model_config = example(name="Corner Shop", payout_schedule="daily", fee_bps=290, currency="usd")
    name: str = Field(min_length=1, max_length=200, pattern=PRINTABLE)
    payout_schedule: PayoutSchedule = "daily"
    fee_bps: StrictInt = Field(default=290, ge=0, le=10_000)
    currency: str = Currency
    payout_account: str | None = Field(default=None, pattern=r"^acct_[A-Za-z0-9]+$")


class MerchantOut(BaseModel):
    id: str
    name: str
    payout_account: str | None
    payout_schedule: PayoutSchedule
    fee_bps: int
    currency: str


CARD_TOKEN = r"^(tok|pm)_[A-Za-z0-9_]{1,250}$"  # noqa: S105 (a pattern, not a secret)
CardToken = Field(pattern=CARD_TOKEN, examples=["pm_card_visa"])
# Idempotency keys reach workflow ids and Redis keys: segments of letters and digits between `._:-`,
# and no all-digit segment of 13 digits or more (a card number's length), found by the detector or not.
_KEY_SEGMENT = r"(?:[0-9]{0,12}|[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*)"
KEY_PATTERN = rf"^{_KEY_SEGMENT}(?:[._:-]{_KEY_SEGMENT})*$"
KEY_MAX_LENGTH = 255
KeyInBody = Field(
    default=None,
    pattern=KEY_PATTERN,
    min_length=1,
    max_length=KEY_MAX_LENGTH,
    description="or the Idempotency-Key header",
)


class PaymentInit(Strict):
    model_config = example(
        user_id="usr_0f8fad5bd9cb469fa16570867728950e",
        merchant_id="mer_7c9e6679742540de944be07fc1f90ae7",
        amount=2500,
        currency="usd",
        card_token="pm_card_visa",  # noqa: S106 (a Stripe test payment method, not a secret)
        idempotency_key="order-1042",
    )
    user_id: str = Field(pattern=USER_ID)
    merchant_id: str = Field(pattern=MERCHANT_ID)
    amount: StrictInt = Field(gt=0, le=99_999_999, description="minor units, e.g. cents")
    currency: str = Currency
    card_token: str | None = Field(default=None, pattern=CARD_TOKEN, examples=["pm_card_visa"])
    saved_card_id: str | None = Field(
        default=None, pattern=SAVED_CARD_ID, description="a card on file of the paying user, in place of card_token"
    )
    save_card: StrictBool = Field(default=False, description="keep the card_token's card on file once it authorizes")
    idempotency_key: str | None = KeyInBody

    @model_validator(mode="after")
    def one_card(self) -> PaymentInit:
        if (self.card_token is None) == (self.saved_card_id is None):
            raise ValueError("give exactly one of card_token and saved_card_id")
        if self.save_card and self.card_token is None:
            raise ValueError("save_card goes with a card_token (a saved card is saved already)")
        return self


class SavedCardCreate(Strict):
    model_config = example(card_token="pm_card_visa", idempotency_key="save-card-1")  # noqa: S106 (a test method)
    card_token: str = CardToken
    idempotency_key: str = Field(pattern=KEY_PATTERN, min_length=1, max_length=KEY_MAX_LENGTH)


class SavedCardOut(BaseModel):
    """What a card on file shows: never the PaymentMethod id, never more than brand, last four, expiry."""

    id: str
    status: SavedCardStatus
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    is_default: bool
    client_secret: str | None = Field(
        default=None, description="status requires_action: the SetupIntent's, for Stripe.js's 3-D Secure"
    )


class SavedCardList(BaseModel):
    data: list[SavedCardOut]


class PaymentMethod(Strict):
    """Another card for a declined payment: a new one or one of the paying user's saved cards."""

    model_config = example(card_token="pm_card_mastercard")  # noqa: S106 (a Stripe test payment method)
    card_token: str | None = Field(default=None, pattern=CARD_TOKEN, examples=["pm_card_mastercard"])
    saved_card_id: str | None = Field(default=None, pattern=SAVED_CARD_ID, description="a card on file of the payer")

    @model_validator(mode="after")
    def one_card(self) -> PaymentMethod:
        if (self.card_token is None) == (self.saved_card_id is None):
            raise ValueError("give exactly one of card_token and saved_card_id")
        return self


class PaymentConfirm(Strict):
    model_config = examples(
        {"tx_id": "tx_3f2504e04f8941d39a0c0305e82c3301", "amount": 2000},
        {"tx_id": "tx_3f2504e04f8941d39a0c0305e82c3301", "payment_method": {"card_token": "pm_card_mastercard"}},
        {
            "tx_id": "tx_3f2504e04f8941d39a0c0305e82c3301",
            "payment_method": {"saved_card_id": "card_9b2f6c1d4e7a4b0c8d3e5f6a7b8c9d0e"},
        },
    )
    tx_id: str = Field(pattern=TX_ID)
    amount: StrictInt | None = Field(default=None, gt=0, description="capture less than authorized; default all")
    payment_method: PaymentMethod | None = Field(
        default=None,
        description="a declined payment only (the paying user): authorize this card on the same payment, then capture",
    )


class RefundCreate(Strict):
    model_config = example(amount=500, idempotency_key="refund-1042-1", reason="requested_by_customer")
    amount: StrictInt | None = Field(default=None, gt=0, description="default: everything still refundable")
    idempotency_key: str = Field(pattern=KEY_PATTERN, min_length=1, max_length=KEY_MAX_LENGTH)
    reason: Literal["duplicate", "fraudulent", "requested_by_customer"] | None = None


class Card(BaseModel):
    brand: str | None
    last4: str | None


class RedirectToUrl(BaseModel):
    url: str = Field(description="where the customer authenticates (3-D Secure)")
    return_url: str | None = Field(description="where Stripe sends the customer back: the checkout page")


class NextAction(BaseModel):
    type: Literal["redirect_to_url"]
    redirect_to_url: RedirectToUrl


class DisputeOut(BaseModel):
    id: str
    tx_id: str
    merchant_id: str
    amount: int
    fee: int = Field(description="Stripe's dispute fee, borne by the merchant, never reinstated")
    currency: str
    reason: str
    status: DisputeStatus
    evidence_due_by: AwareDatetime
    created_at: AwareDatetime
    updated_at: AwareDatetime


def dispute_out(dispute: Dispute) -> DisputeOut:
    return DisputeOut.model_validate(dispute, from_attributes=True)  # the same names, validated


class DisputeList(BaseModel):
    data: list[DisputeOut]
    next_cursor: str | None


class EvidenceCreate(Strict):
    model_config = example(text="Delivered on 2026-11-02, signed for by the cardholder.", submit=True)
    text: str = Field(min_length=1, max_length=20_000, pattern=r"^[^\x00]+$")
    submit: StrictBool = Field(default=False, description="send it to the bank now; otherwise kept until due_by")


class TransactionOut(BaseModel):
    id: str
    user_id: str
    merchant_id: str
    amount: int
    amount_captured: int
    amount_refunded: int
    currency: str
    status: TransactionStatus
    failure_code: str | None
    failure_message: str | None
    card: Card
    # A default: init answers cached before the field (24 h in Redis) are still replayed.
    card_attempts: int = Field(
        default=1, description="cards tried on this payment: 1 at init, one more per card after a decline"
    )
    idempotency_key: str
    created_at: AwareDatetime
    updated_at: AwareDatetime
    # Init of a payment that needs 3-D Secure: what the customer's browser needs to authenticate.
    next_action: NextAction | None = None
    client_secret: str | None = None
    dispute: DisputeOut | None = Field(default=None, description="the latest dispute of this payment, if any")


class DemoCheckout(BaseModel):
    """Development only: a demo order for the checkout page, and a short-lived token for its payer."""

    user_id: str
    merchant_id: str
    merchant_name: str
    amount: int
    currency: str
    token: str


class RefundOut(BaseModel):
    id: str
    tx_id: str
    amount: int
    currency: str
    status: RefundStatus = Field(
        description="pending until Stripe reports it succeeded (card refunds usually are at once); "
        "failed when Stripe refused it or the card network returned it, even after it succeeded"
    )
    reason: str | None
    failure_code: str | None = Field(description="Stripe's failure_reason, e.g. expired_or_canceled_card")
    created_at: AwareDatetime


class TransactionList(BaseModel):
    data: list[TransactionOut]
    next_cursor: str | None


class PayoutCreate(Strict):
    model_config = example(merchant_id="mer_7c9e6679742540de944be07fc1f90ae7", amount=10000, currency="usd")
    merchant_id: str = Field(pattern=MERCHANT_ID)
    amount: StrictInt | None = Field(default=None, gt=0, le=99_999_999_999, description="default: all available")
    currency: str | None = Field(default=None, pattern=r"^[a-z]{3}$")
    idempotency_key: str | None = KeyInBody


class PayoutOut(BaseModel):
    id: str
    merchant_id: str
    amount: int
    currency: str
    status: PayoutStatus
    period: str
    failure_code: str | None
    created_at: AwareDatetime


class PayoutList(BaseModel):
    data: list[PayoutOut]
    next_cursor: str | None


class BalanceOut(BaseModel):
    merchant_id: str
    currency: str
    available: int = Field(description="negative when disputes or refunds took more than was unpaid (a deficit)")
    in_transit: int
    paid: int
    disputed: int = Field(description="the amount of open disputes (already withdrawn from available)")


class ReconciliationRunCreate(Strict):
    model_config = example(window_start="2026-01-01T00:00:00Z", window_end="2026-01-02T00:00:00Z")
    window_start: AwareDatetime | None = Field(default=None, description="default: window_end - the interval")
    window_end: AwareDatetime | None = Field(default=None, description="default: now")


class ReconciliationRunOut(BaseModel):
    id: str
    window_start: AwareDatetime
    window_end: AwareDatetime
    status: ReconciliationRunStatus
    counts: dict[str, int]
    workflow_id: str | None = None


class ReconciliationRunList(BaseModel):
    data: list[ReconciliationRunOut]
    next_cursor: str | None


class ReconciliationLogOut(BaseModel):
    id: int
    run_id: str
    discrepancy: str
    subject: str
    tx_id: str | None
    refund_id: str | None
    payout_id: str | None
    details: dict[str, Any]
    resolution_status: ResolutionStatus
    resolution: str | None
    resolved_by: str | None
    resolved_at: AwareDatetime | None
    created_at: AwareDatetime


class ReconciliationLogList(BaseModel):
    data: list[ReconciliationLogOut]
    next_cursor: str | None


class Resolution(Strict):
    model_config = example(resolution="Refunded by hand on the Stripe dashboard.")
    resolution: str = Field(min_length=1, max_length=2000)


class TimelineEntry(BaseModel):
    """One thing that happened; the other fields depend on `kind` (status, ledger, event, stripe)."""

    model_config = ConfigDict(extra="allow")
    at: AwareDatetime
    kind: Literal["status", "ledger", "event", "stripe", "delivery"]


class TimelineOut(BaseModel):
    tx_id: str
    workflow_id: str
    data: list[TimelineEntry]


# What an endpoint may subscribe to: the events that concern a merchant, or "*" for all of them.
WebhookEventType = Literal[
    "*",
    "payment.authorized",
    "payment.confirmed",
    "payment.failed",
    "payment.canceled",
    "refund.succeeded",
    "refund.failed",
    "payout.paid",
    "payout.failed",
    "dispute.created",
    "dispute.closed",
]
ENDPOINT_ID, DELIVERY_ID = r"^we_[0-9a-f]{32}$", r"^whd_[0-9a-f]{32}$"
EVENT_ID = r"^[0-9]{1,18}$"  # fits a bigint


class WebhookEndpointCreate(Strict):
    model_config = example(url="https://shop.example/payments/webhooks", enabled_events=["payment.confirmed"])
    url: str = Field(min_length=1, max_length=2048, description="https (http in development); never a private address")
    enabled_events: list[WebhookEventType] = Field(min_length=1, max_length=16)


class WebhookEndpointOut(BaseModel):
    id: str
    merchant_id: str
    url: str
    enabled_events: list[str]
    status: WebhookEndpointStatus
    created_at: AwareDatetime
    secret: str | None = Field(
        default=None, description="Only when created or rotated: keep it, it is never shown again"
    )


class WebhookEndpointList(BaseModel):
    data: list[WebhookEndpointOut]
    next_cursor: str | None


class WebhookDeliveryOut(BaseModel):
    id: str
    event_id: str
    endpoint_id: str
    status: WebhookDeliveryStatus
    attempts: int
    last_status_code: int | None
    created_at: AwareDatetime
    updated_at: AwareDatetime


class WebhookDeliveryList(BaseModel):
    data: list[WebhookDeliveryOut]
    next_cursor: str | None


class WebhookAttemptOut(BaseModel):
    attempted_at: AwareDatetime
    status_code: int | None = Field(description="null: no answer (see error)")
    duration_ms: int
    response_body: str = Field(description="the answer's first kilobyte")
    error: Literal["timeout", "connection_error", "refused_address"] | None


class WebhookAttemptList(BaseModel):
    data: list[WebhookAttemptOut]
    next_cursor: str | None


class StatementLineOut(BaseModel):
    kind: str = Field(description="payment, refund, refund_returned, dispute, dispute_won, transfer_reversal")
    reference: str = Field(description="the ledger posting it comes from, e.g. capture:tx_…, refund:re_…")
    tx_id: str | None = Field(description="the payment it is about")
    created_at: AwareDatetime
    amount: int = Field(description="gross, as the merchant sees it (a refund is negative)")
    fee: int = Field(description="the platform's fee in it (or Stripe's dispute fee, on a dispute)")
    net: int = Field(description="amount - fee: what it gave or took from the payout")


class StatementKindTotal(BaseModel):
    count: int
    amount: int
    fee: int
    net: int


class StatementTotalsOut(BaseModel):
    by_kind: dict[str, StatementKindTotal]
    net: int = Field(description="the sum of every line's net")
    carried_over: int = Field(
        description="paid from before these lines (positive) or held back for a refund in flight (negative)"
    )
    payout: int = Field(description="net + carried_over: the payout's amount")


class PayoutStatementOut(BaseModel):
    payout: PayoutOut
    totals: StatementTotalsOut
    data: list[StatementLineOut]
    next_cursor: str | None


class MonthlyStatementOut(BaseModel):
    merchant_id: str
    month: str
    currency: str
    opening_balance: int = Field(description="what the platform owed the merchant as the month opened")
    movements: dict[str, StatementKindTotal] = Field(description="by kind; payouts reserved are `payout`")
    closing_balance: int


class MonthEndFigures(BaseModel):
    currency: str
    gross_volume: int
    refunds: int
    disputes: int = Field(description="withdrawn by Stripe (dispute fees in it) less what won disputes gave back")
    our_fees: int
    stripe_fees: int
    net_revenue: int = Field(description="our_fees - stripe_fees")
    paid_out: int
    recovered_from_merchants: int = Field(description="transfer reversals taken back against deficits")
    owed_to_merchants: int = Field(description="at the month's end, payouts not yet transferred included")
    stripe_balance: int = Field(description="what the ledger says Stripe held for the platform at the month's end")


class MonthEndReport(BaseModel):
    month: str
    data: list[MonthEndFigures]


def payout_view_out(view: PayoutView) -> PayoutOut | None:
    """The resource from the workflow's view of the row (None for a view recorded before views
    carried the row's creation time: then the row is read)."""
    if view.created_at is None:
        return None
    status = cast(PayoutStatus, view.status)  # the CHECK constraint holds it to these
    return PayoutOut(
        id=view.payout_id,
        merchant_id=view.merchant_id,
        amount=view.amount,
        currency=view.currency,
        status=status,
        period=view.period,
        failure_code=view.failure_code,
        created_at=view.created_at,
    )


def payout_out(payout: Payout) -> PayoutOut:
    return PayoutOut(
        id=payout.id,
        merchant_id=payout.merchant_id,
        amount=payout.amount,
        currency=payout.currency,
        status=payout.status,
        period=payout.period,
        failure_code=payout.failure_code,
        created_at=payout.created_at,
    )
