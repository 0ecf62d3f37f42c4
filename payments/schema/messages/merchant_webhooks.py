"""Deliveries of our signed webhooks to merchants."""

from dataclasses import dataclass


@dataclass(frozen=True)
class WebhookDeliveryRequest:
    """One outbox event to one merchant endpoint, with the retry schedule from the settings at
    the start (a running delivery keeps its own)."""

    delivery_id: str
    endpoint_id: str
    event_id: int
    merchant_id: str
    retry_initial_seconds: float
    retry_max_seconds: float
    retry_for_seconds: float  # then the delivery fails; an endpoint failing this long is disabled
    single_attempt: bool = False  # a manual retry of a finished delivery: one attempt, now


@dataclass(frozen=True)
class WebhookAttemptResult:
    """`delivered` (a 2xx), `retry` (anything else; the attempt is recorded) or `gone` (the endpoint
    was deleted or disabled: nothing more to send)."""

    delivery_id: str
    outcome: str
    status_code: int | None = None


@dataclass(frozen=True)
class WebhookGiveUp:
    delivery_id: str
    endpoint_id: str
    failing_for_seconds: float  # an endpoint failing at least this long is disabled
