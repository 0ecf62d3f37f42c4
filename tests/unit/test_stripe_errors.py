"""Stripe errors become ApplicationErrors with Stripe's code, status and request id, chained to
(never the same object as) the Stripe exception, so Temporal can serialize the failure."""

import pytest
import stripe
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from payments.activities.stripe_errors import final_or_transient

HEADERS = {"request-id": "req_123"}


@pytest.mark.parametrize(
    ("exc", "kind", "retryable"),
    [
        (stripe.APIError("boom", http_status=500, headers=HEADERS, code="api_error"), "StripeUnavailable", True),
        (stripe.APIConnectionError("no answer", headers=HEADERS), "StripeUnavailable", True),
        (stripe.RateLimitError("slow down", http_status=429, headers=HEADERS), "StripeRateLimited", True),
        # What the SDK raises for Stripe's 409 (a request with the key still in flight).
        (
            stripe.APIError("in flight", http_status=409, headers=HEADERS, code="idempotency_key_in_use"),
            "StripeRequestInFlight",
            True,
        ),
        # ...and for a 400 idempotency_error: the key reused with other parameters, which no retry mends.
        (stripe.IdempotencyError("other parameters", http_status=400, headers=HEADERS), "StripeRequestRefused", False),
        (
            stripe.InvalidRequestError(
                "no such thing", "id", code="resource_missing", http_status=404, headers=HEADERS
            ),
            "StripeRequestRefused",
            False,
        ),
        (stripe.CardError("declined", None, "card_declined", http_status=402, headers=HEADERS), "CardDeclined", False),
    ],
)
def test_a_stripe_error_becomes_a_typed_failure_with_its_request_id(
    exc: stripe.StripeError, kind: str, retryable: bool
) -> None:
    failure = final_or_transient(exc)
    assert isinstance(failure, ApplicationError)
    assert (failure.type, failure.non_retryable) == (kind, not retryable)
    assert failure.details[0]["request_id"] == "req_123"
    assert failure.details[0]["http_status"] == exc.http_status


def test_a_transient_stripe_error_converts_to_a_temporal_failure_with_its_cause() -> None:
    """What the worker does with a raised activity error: it must not follow a cause cycle."""
    exc = stripe.APIError("boom", http_status=503, headers=HEADERS)
    try:
        raise final_or_transient(exc) from exc
    except Exception as raised:
        proto = Failure()
        DataConverter.default.failure_converter.to_failure(raised, DataConverter.default.payload_converter, proto)
    assert proto.application_failure_info.type == "StripeUnavailable"
    assert proto.cause.application_failure_info.type == "APIError"
    assert not proto.cause.HasField("cause")
