"""Which Stripe failures are final (non-retryable, with a type the workflow branches on) and
which are transient (retried by Temporal's policy with the same idempotency key). Either way an
ApplicationError carrying Stripe's code, HTTP status and request id, so the history says what
Stripe answered; the Stripe exception is only ever its cause (`raise ... from exc`)."""

from __future__ import annotations

from typing import Any

import stripe
from temporalio.exceptions import ApplicationError


def stripe_details(exc: stripe.StripeError) -> dict[str, Any]:
    return {"code": exc.code, "http_status": exc.http_status, "request_id": exc.request_id}


def final_or_transient(exc: stripe.StripeError) -> ApplicationError:
    """The failure an activity should raise for a Stripe error."""
    details = stripe_details(exc)
    message = exc.user_message or type(exc).__name__
    if isinstance(exc, stripe.CardError):
        decline_code = getattr(exc, "decline_code", None)
        return ApplicationError(
            message, details | {"decline_code": decline_code}, type="CardDeclined", non_retryable=True
        )
    if isinstance(exc, stripe.RateLimitError):
        return ApplicationError(message, details, type="StripeRateLimited")
    status = exc.http_status or 0
    if isinstance(exc, stripe.IdempotencyError) and status == 409:
        return ApplicationError(message, details, type="StripeRequestInFlight")  # still running at Stripe
    if 400 <= status < 500:
        return ApplicationError(message, details, type="StripeRequestRefused", non_retryable=True)
    return ApplicationError(message, details, type="StripeUnavailable")  # 5xx, no answer, unknown
