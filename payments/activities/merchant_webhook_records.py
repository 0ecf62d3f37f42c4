"""Merchant webhooks in PostgreSQL: what one delivery sends (the event, the endpoint's URL and
active secrets), each attempt's record, and giving up, which disables an endpoint that has failed
for the whole retry window and says so on the internal stream."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from payments.activities.outbox import add_event
from payments.config.card_numbers import redact_card_numbers
from payments.config.keyring import Keyring, Sealed
from payments.schema.messages import WebhookDeliveryRequest, WebhookGiveUp
from payments.schema.tables import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint

ANSWER_KEPT_BYTES = 1024


@dataclass(frozen=True)
class Outgoing:
    """What one attempt POSTs: held in the activity only (the secrets never enter a history)."""

    url: str
    body: bytes
    secrets: list[str]


@dataclass(frozen=True)
class Answer:
    """What one attempt got back; no status code when nothing answered."""

    attempted_at: datetime
    duration_ms: int
    status_code: int | None = None
    head: bytes = b""
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def open_secret(keyring: Keyring, endpoint_id: str, key_id: str, blob: bytes) -> str:
    """Secrets are sealed with their endpoint's id as associated data: a blob copied to another row
    does not open."""
    return keyring.open(Sealed(key_id, blob), endpoint_id.encode()).decode()


def signing_secrets(keyring: Keyring, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The current secret, and the previous one until its expiry (a rotation's overlap)."""
    active = [open_secret(keyring, endpoint.id, endpoint.secret_key_id, endpoint.secret)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and endpoint.previous_secret_key_id and expires and now < expires:
        active.append(open_secret(keyring, endpoint.id, endpoint.previous_secret_key_id, endpoint.previous_secret))
    return active


def event_body(event: OutboxEvent) -> bytes:
    document = {
        "id": str(event.id),
        "type": event.type,
        "created": int(event.created_at.timestamp()),
        "data": {"object": event.payload},
    }
    return json.dumps(document, separators=(",", ":")).encode()


def kept_answer(head: bytes) -> str:
    """The first kilobyte of an answer as text PostgreSQL stores (no NUL), card numbers redacted."""
    text = head[:ANSWER_KEPT_BYTES].decode("utf-8", "replace").replace("\x00", "\ufffd")
    return redact_card_numbers(text, "[card number]")


class WebhookRecords:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], keyring: Keyring) -> None:
        self._sessions = sessions
        self._keyring = keyring

    async def outgoing(self, request: WebhookDeliveryRequest) -> Outgoing | None:
        """The delivery's row (created by its first attempt) and what to send; None when the
        endpoint was deleted or disabled meanwhile (a disabled one's pending delivery fails)."""
        async with self._sessions.begin() as session:
            endpoint = await session.get(WebhookEndpoint, request.endpoint_id)
            event = await session.get(OutboxEvent, request.event_id)
            if endpoint is None or event is None:
                return None
            await session.execute(
                insert(WebhookDelivery)
                .values(
                    id=request.delivery_id,
                    endpoint_id=endpoint.id,
                    event_id=event.id,
                    merchant_id=request.merchant_id,
                    status="pending",
                )
                .on_conflict_do_nothing(index_elements=["id"])
            )
            if endpoint.status != "enabled":
                delivery = await session.get(WebhookDelivery, request.delivery_id, with_for_update=True)
                if delivery is not None and delivery.status == "pending":
                    delivery.status = "failed"
                return None
            return Outgoing(
                endpoint.url, event_body(event), signing_secrets(self._keyring, endpoint, datetime.now(UTC))
            )

    async def record_attempt(self, delivery_id: str, answer: Answer) -> bool:
        """The attempt, the delivery's counters and status, and the endpoint's failing streak, in one
        transaction. False when the delivery is gone (its endpoint was deleted mid-attempt)."""
        async with self._sessions.begin() as session:
            delivery = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
            if delivery is None:
                return False
            session.add(
                WebhookAttempt(
                    delivery_id=delivery.id,
                    attempted_at=answer.attempted_at,
                    status_code=answer.status_code,
                    duration_ms=answer.duration_ms,
                    response_body=kept_answer(answer.head),
                    error=answer.error,
                )
            )
            delivery.attempts += 1
            delivery.last_status_code = answer.status_code
            if answer.delivered:
                delivery.status = "delivered"
            endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id, with_for_update=True)
            if endpoint is not None:
                if answer.delivered:
                    endpoint.failing_since = None
                elif endpoint.failing_since is None:
                    endpoint.failing_since = answer.attempted_at
            return True

    @activity.defn
    async def give_up_delivery(self, give_up: WebhookGiveUp) -> bool:
        """The delivery fails; its endpoint, failing for the whole window, is disabled and a
        `webhook_endpoint.disabled` event tells the merchant. True when it was disabled now."""
        async with self._sessions.begin() as session:
            delivery = await session.get(WebhookDelivery, give_up.delivery_id, with_for_update=True)
            if delivery is not None and delivery.status == "pending":
                delivery.status = "failed"
            endpoint = await session.get(WebhookEndpoint, give_up.endpoint_id, with_for_update=True)
            since = endpoint.failing_since if endpoint else None
            if endpoint is None or endpoint.status != "enabled" or since is None:
                return False
            if datetime.now(UTC) - since < timedelta(seconds=give_up.failing_for_seconds):
                return False
            endpoint.status = "disabled"
            await add_event(
                session,
                "webhook_endpoint.disabled",
                endpoint.id,
                {
                    "endpoint_id": endpoint.id,
                    "merchant_id": endpoint.merchant_id,
                    "url": endpoint.url,
                    "failing_since": since.isoformat(),
                },
            )
            return True
