"""Which Stripe failures are final (non-retryable, with a type the workflow branches on) and
which are transient (left to Temporal's retry policy with the same idempotency key)."""

from __future__ import annotations

import stripe
from temporalio.exceptions import ApplicationError


def final_or_transient(exc: stripe.StripeError) -> Exception:
    """Return the exception an activity should raise for a Stripe error."""
    if isinstance(exc, stripe.CardError):
        return ApplicationError(
            exc.user_message or "card declined",
            {"code": exc.code, "decline_code": getattr(exc, "decline_code", None)},
            type="CardDeclined",
            non_retryable=True,
        )
    if isinstance(exc, stripe.RateLimitError | stripe.APIConnectionError):
        return exc
    status = exc.http_status or 0
    if isinstance(exc, stripe.IdempotencyError) and status == 409:
        return exc  # the same request is still in flight at Stripe: retry later
    if 400 <= status < 500:
        return ApplicationError(
            exc.user_message or str(exc.code or "stripe request refused"),
            {"code": exc.code, "status": status},
            type="StripeRequestRefused",
            non_retryable=True,
        )
    return exc  # 5xx and unknown: transient
