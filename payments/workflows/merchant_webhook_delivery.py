"""WebhookDeliveryWorkflow, id `webhook:{endpoint_id}:{event_id}` (one per event and endpoint, so
it starts once): attempt, and after each failed attempt wait an exponentially growing, jittered
while (or until a manual retry signals) and attempt again, for the retry window; then the delivery
fails and an endpoint failing all that time is disabled."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from payments.activities.merchant_webhook_http import WebhookSender
    from payments.activities.merchant_webhook_records import WebhookRecords
    from payments.schema.messages import WebhookDeliveryRequest, WebhookGiveUp
    from payments.workflows.policies import DB_STEP, WEBHOOK_STEP

if TYPE_CHECKING:
    from payments.config.settings import Settings

_DELIVERIES = uuid.UUID("6f1c7d1e-2b7a-4f57-9a55-0e9d3c1b8a42")
MAX_DOUBLINGS = 30  # past this the wait is capped anyway; keeps 2**n small


def workflow_id(endpoint_id: str, event_id: int) -> str:
    return f"webhook:{endpoint_id}:{event_id}"


def delivery_id(endpoint_id: str, event_id: int) -> str:
    """Derived, so a restarted fan-out or a retried first attempt names the same delivery."""
    return "whd_" + uuid.uuid5(_DELIVERIES, workflow_id(endpoint_id, event_id)).hex


def delivery_request(
    settings: Settings, endpoint_id: str, event_id: int, merchant_id: str, *, single_attempt: bool = False
) -> WebhookDeliveryRequest:
    """The workflow's input, with the retry schedule the settings give now."""
    return WebhookDeliveryRequest(
        delivery_id=delivery_id(endpoint_id, event_id),
        endpoint_id=endpoint_id,
        event_id=event_id,
        merchant_id=merchant_id,
        retry_initial_seconds=settings.webhook_retry_initial.total_seconds(),
        retry_max_seconds=settings.webhook_retry_max.total_seconds(),
        retry_for_seconds=settings.webhook_retry_for.total_seconds(),
        single_attempt=single_attempt,
    )


def backoff(request: WebhookDeliveryRequest, failures: int, draw: float) -> timedelta:
    """Exponential from retry_initial, capped at retry_max, with equal jitter (`draw` in [0, 1)):
    half the wait fixed, half random, so endpoints that failed together do not retry together."""
    ceiling = min(request.retry_initial_seconds * 2 ** min(failures - 1, MAX_DOUBLINGS), request.retry_max_seconds)
    return timedelta(seconds=ceiling / 2 + ceiling / 2 * draw)


@workflow.defn
class WebhookDeliveryWorkflow:
    def __init__(self) -> None:
        self._retry_requested = False

    @workflow.run
    async def run(self, request: WebhookDeliveryRequest) -> str:
        """`delivered`, `failed` or `gone` (the endpoint was deleted or disabled)."""
        deadline = workflow.now() + timedelta(seconds=request.retry_for_seconds)
        failures = 0
        while True:
            self._retry_requested = False
            result = await workflow.execute_activity_method(WebhookSender.attempt_delivery, request, **WEBHOOK_STEP)
            if result.outcome == "delivered" and self._resend_asked():
                continue
            if result.outcome != "retry":
                return result.outcome
            failures += 1
            wait = min(backoff(request, failures, workflow.random().random()), deadline - workflow.now())
            if request.single_attempt or wait <= timedelta(0):
                give_up = WebhookGiveUp(request.delivery_id, request.endpoint_id, request.retry_for_seconds)
                await workflow.execute_local_activity_method(WebhookRecords.give_up_delivery, give_up, **DB_STEP)
                return "failed"
            try:
                await workflow.wait_condition(lambda: self._retry_requested, timeout=wait)
            except TimeoutError:
                pass  # the wait is over: the next attempt

    def _resend_asked(self) -> bool:
        """A manual retry that reached this run while its attempt was landing: the merchant asked
        for a delivered event again, and a new run would not start while this one ends."""
        return self._retry_requested and workflow.patched("resend-after-delivered")

    @workflow.signal
    def retry_now(self) -> None:
        """A manual retry: the next attempt starts now instead of at the end of the wait."""
        self._retry_requested = True
