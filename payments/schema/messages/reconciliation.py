"""Reconciliation runs, their pages and totals; the daily check of Stripe's balance against the ledger."""

from dataclasses import dataclass, field


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
class StripeBalanceCheck:
    """One currency of the daily check: Stripe's available + pending, the top-ups in it, the
    ledger's stripe_clearing, what is in flight, and what none of that explains (0: all is well)."""

    currency: str
    stripe: int
    top_ups: int
    ledger: int
    in_flight: int
    unexplained: int
