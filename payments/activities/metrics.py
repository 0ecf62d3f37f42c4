"""Business metrics, counted where the change is recorded (activities, the outbox relay), never in
workflow code (a replay would count twice). Labels are low-cardinality: never an id or an amount."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

# The worker's own registry: in-process tests run API and worker side by side, each /metrics
# shows only its own process part.
REGISTRY = CollectorRegistry()

PAYMENTS = Counter(
    "payments_payments",
    "Payments reaching a status (authorized, requires_action, failed, canceled), by decline code",
    ["outcome", "decline_code"],
    registry=REGISTRY,
)
CAPTURES = Counter("payments_captures", "Payments captured", ["currency"], registry=REGISTRY)
REFUNDS = Counter("payments_refunds", "Refunds settled, by outcome", ["outcome"], registry=REGISTRY)
PAYOUTS = Counter("payments_payouts", "Payouts settled, by outcome", ["outcome"], registry=REGISTRY)
DISPUTES = Counter(
    "payments_disputes", "Disputes recorded (created) and closed (won, lost)", ["outcome"], registry=REGISTRY
)
DISCREPANCIES = Counter(
    "payments_reconciliation_discrepancies",
    "Reconciliation discrepancies logged, by class and resolution",
    ["discrepancy", "resolution"],
    registry=REGISTRY,
)
OUTBOX_LAG = Gauge(
    "payments_outbox_lag_seconds", "Age of the oldest event the relay found unpublished (0: none)", registry=REGISTRY
)
# Payments nobody is moving (payments/workers/open_payments.py measures these every few seconds).
OPEN_PAYMENT_AGE = Gauge(
    "payments_open_payment_age_seconds",
    "Age of the oldest payment in each open status (pending, requires_action, authorized, declined; 0: none)",
    ["status"],
    registry=REGISTRY,
)
AUTHORIZATION_EXPIRY = Gauge(
    "payments_authorization_expiry_seconds",
    "How long an authorization waits for its confirm (PAYMENTS_AUTHORIZATION_EXPIRY): the bound an open payment's age"
    " is compared with",
    registry=REGISTRY,
)
STRIPE_DISAGREEMENTS = Gauge(
    "payments_stripe_disagreements",
    "Payments and refunds whose Stripe state and ours disagree, open for review, by reconciliation class",
    ["discrepancy"],
    registry=REGISTRY,
)
STRIPE_BALANCE_UNEXPLAINED = Gauge(
    "payments_stripe_balance_unexplained",
    "Stripe's balance less top-ups and the ledger's stripe_clearing, beyond what is in flight, at the last daily"
    " check (0: they agree)",
    ["currency"],
    registry=REGISTRY,
)
STRIPE_AHEAD = Counter(
    "payments_stripe_ahead",
    "A webhook or read-back found Stripe ahead of our row and recorded it, by what it found",
    ["found"],
    registry=REGISTRY,
)
STRIPE_AHEAD_FOUND = ("captured", "canceled", "refund")
for _found in STRIPE_AHEAD_FOUND:
    STRIPE_AHEAD.labels(_found)  # each series from 0, so that the first increment shows in increase()
ACTIVITY_RETRIES = Counter(
    "payments_activity_retries", "Activity attempts beyond the first, by activity", ["activity"], registry=REGISTRY
)


class _CountRetries(ActivityInboundInterceptor):
    """An activity task counts each attempt beyond its first as it starts. A local activity counts
    each failure that a retry follows: its retries are local attempts, or, for a Stripe step's first
    attempt (payments/workflows/stripe_steps.py), an activity task whose own first attempt is that retry."""

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        if not info.is_local and info.attempt > 1:
            ACTIVITY_RETRIES.labels(info.activity_type).inc()
        try:
            return await super().execute_activity(input)
        except Exception as error:
            if info.is_local and not (isinstance(error, ApplicationError) and error.non_retryable):
                ACTIVITY_RETRIES.labels(info.activity_type).inc()
            raise


class CountRetries(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CountRetries(next)
