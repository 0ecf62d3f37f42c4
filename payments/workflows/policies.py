"""Retry policies and timeouts, named once and used at every call site."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

_STRIPE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)

# Stripe: transient failures (5xx, 429, no answer) retry with backoff under the same idempotency key.
# The activity heartbeats while it waits on Stripe (payments/activities/heartbeat.py), so a killed worker is
# noticed after the heartbeat timeout; start-to-close stays above the Stripe SDK's own timeout
# (settings.stripe_timeout_seconds, 20 s, and the SDK does not retry), so a slow answer is not cut short.
STRIPE_STEP: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "heartbeat_timeout": timedelta(seconds=5),
    "retry_policy": _STRIPE_RETRY,
}

# A Stripe call's first attempt, run as a local activity inside the workflow task that needs it
# (payments/workflows/stripe_steps.py): no retries here, a transient failure moves to STRIPE_STEP.
STRIPE_FIRST_ATTEMPT: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(maximum_attempts=1),
}

# A reconciliation page: Stripe reads (paced by their budget) and database writes in turn. It starts
# no Stripe page after 20 s (reconciliation_slices.READING_SECONDS), then finishes the pages in hand;
# it heartbeats throughout, so a dead worker is noticed after the heartbeat timeout, not this one.
RECONCILE_PAGE: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=2),
    "heartbeat_timeout": timedelta(seconds=10),
    "retry_policy": _STRIPE_RETRY,
}

# PostgreSQL: short steps, run as local activities (in the worker, without a round trip through
# the server per step: a payment's three writes cost no extra workflow tasks), retried until the
# database is back.
DB_STEP: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=15),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=100),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
    ),
}

# A worker killed mid workflow task holds the workflow up until this passes (the SDK's default is
# 10 s); local activities extend a task by heartbeating it, so a short timeout only bounds a loss.
WORKFLOW_TASK_TIMEOUT = timedelta(seconds=3)

# A merchant webhook attempt: a 10 s POST (settings.webhook_timeout_seconds) between two short
# database steps. It heartbeats while it waits on the merchant, so a killed worker's attempt is
# retried elsewhere within seconds; its own retries are for the database (an unanswered POST is
# a recorded attempt, not a failure).
WEBHOOK_STEP: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "heartbeat_timeout": timedelta(seconds=5),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
    ),
}
