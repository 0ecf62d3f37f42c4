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
    if status == 409:
        # Our earlier attempt with this idempotency key is still running at Stripe (a call slower
        # than our timeout): its answer comes to the next retry. The SDK raises APIError for a 409,
        # never IdempotencyError (that is its class for a 400 idempotency_error: other parameters).
        return ApplicationError(message, details, type="StripeRequestInFlight")
    if 400 <= status < 500:
        return ApplicationError(message, details, type="StripeRequestRefused", non_retryable=True)
    return ApplicationError(message, details, type="StripeUnavailable")  # 5xx, no answer, unknown
