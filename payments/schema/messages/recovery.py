"""Recovering a merchant's negative balance by reversing transfers."""

from dataclasses import dataclass


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
