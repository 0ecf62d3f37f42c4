"""Retry policies and timeouts, named once and used at every call site."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

# Stripe: transient failures (5xx, 429, timeouts) retry with backoff under the same idempotency key.
STRIPE_STEP: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
    ),
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
