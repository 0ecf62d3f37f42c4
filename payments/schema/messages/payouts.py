"""Payouts to merchants: on demand and the scheduled runs."""

from dataclasses import dataclass
from datetime import datetime


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
    request_fingerprint: str | None = None  # None also in a view recorded before views carried it
    created_at: datetime | None = None


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
