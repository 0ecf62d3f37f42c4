"""Starts merchant webhook deliveries from the outbox: each event that concerns a merchant
(payment.*, refund.*, payout.*, dispute.*) gets one WebhookDeliveryWorkflow per enabled endpoint
of that merchant subscribed to its type. It follows the outbox on a mark of its own
(`fanned_out_at`), apart from the Redis relay, so neither waits on the other and nothing of it
runs in an API request. The workflow id (endpoint, event) makes a second start of one delivery
(a fan-out that died before its mark committed) a no-op. One fan-out at a time across workers
(an advisory lock): it reads without row locks, so it never makes the relay skip a row."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from payments.config.settings import Settings
from payments.schema.messages import WebhookDeliveryRequest
from payments.schema.tables import OutboxEvent, WebhookEndpoint
from payments.workers.polling import IDLE_SECONDS, poll_until_stopped
from payments.workflows import search_attributes as sa
from payments.workflows.merchant_webhook_delivery import WebhookDeliveryWorkflow, delivery_request, workflow_id
from payments.workflows.policies import WORKFLOW_TASK_TIMEOUT

MERCHANT_EVENTS = ("payment.", "refund.", "payout.", "dispute.")
FANOUT_LOCK = 0x77656268  # pg advisory lock key: one fan-out at a time
STARTS_IN_FLIGHT = 16


def concerns_merchant(event_type: str, payload: dict[str, Any]) -> bool:
    return event_type.startswith(MERCHANT_EVENTS) and isinstance(payload.get("merchant_id"), str)


def subscribed(enabled_events: list[str], event_type: str) -> bool:
    return "*" in enabled_events or event_type in enabled_events


class WebhookFanOut:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        temporal: Client,
        settings: Settings,
        batch_size: int = 200,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self._sessions = sessions
        self._temporal = temporal
        self._settings = settings
        self._batch_size = batch_size
        self._idle_seconds = idle_seconds
        self._slots = asyncio.Semaphore(STARTS_IN_FLIGHT)

    async def fan_out_batch(self) -> int:
        """Start the deliveries of the oldest unmarked events and mark them; the number of events."""
        async with self._sessions.begin() as session:
            # The lock taken in the statement that reads the events (a CTE with a volatile function
            # is evaluated once): no events when another worker's fan-out is at it.
            lock = select(func.pg_try_advisory_xact_lock(FANOUT_LOCK).label("held")).cte("fanout_lock")
            events = (
                await session.execute(
                    select(OutboxEvent.id, OutboxEvent.type, OutboxEvent.payload, OutboxEvent.created_at)
                    .join(lock, lock.c.held)
                    .where(OutboxEvent.fanned_out_at.is_(None))
                    .order_by(OutboxEvent.id)
                    .limit(self._batch_size)
                )
            ).all()
            if not events:
                return 0
            merchants = {e.payload["merchant_id"] for e in events if concerns_merchant(e.type, e.payload)}
            endpoints = defaultdict(list)
            if merchants:
                rows = await session.execute(
                    select(WebhookEndpoint.id, WebhookEndpoint.merchant_id, WebhookEndpoint.enabled_events)
                    .add_columns(WebhookEndpoint.created_at)
                    .where(WebhookEndpoint.merchant_id.in_(merchants), WebhookEndpoint.status == "enabled")
                )
                for endpoint in rows:
                    endpoints[endpoint.merchant_id].append(endpoint)
            starts = [
                self._start(delivery_request(self._settings, endpoint.id, event.id, endpoint.merchant_id))
                for event in events
                if concerns_merchant(event.type, event.payload)
                for endpoint in endpoints[event.payload["merchant_id"]]
                # An endpoint hears of what happens after it was created, not before.
                if subscribed(endpoint.enabled_events, event.type) and event.created_at >= endpoint.created_at
            ]
            await asyncio.gather(*starts)
            await session.execute(
                update(OutboxEvent).where(OutboxEvent.id.in_([e.id for e in events])).values(fanned_out_at=func.now())
            )
            return len(events)

    async def _start(self, request: WebhookDeliveryRequest) -> None:
        async with self._slots:
            try:
                await self._temporal.start_workflow(
                    WebhookDeliveryWorkflow.run,
                    request,
                    id=workflow_id(request.endpoint_id, request.event_id),
                    task_queue=self._settings.webhook_task_queue,
                    task_timeout=WORKFLOW_TASK_TIMEOUT,
                    # Running or finished, this delivery was started: never a second time.
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    search_attributes=TypedSearchAttributes([SearchAttributePair(sa.MERCHANT_ID, request.merchant_id)]),
                )
            except WorkflowAlreadyStartedError:
                pass

    async def run(self, stop: asyncio.Event) -> None:
        await poll_until_stopped(
            self.fan_out_batch,
            stop,
            self._idle_seconds,
            (SQLAlchemyError, RPCError, OSError),
            "webhook_fanout",
            full=self._batch_size,
        )
