"""The transactional outbox: an event row written in the same database transaction as the state
change it announces; the relay (workers/outbox_relay.py) publishes it to Redis afterwards."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from schema.tables import OutboxEvent


def add_event(session: AsyncSession, event_type: str, aggregate_id: str, payload: dict[str, Any]) -> None:
    session.add(OutboxEvent(type=event_type, aggregate_id=aggregate_id, payload=payload))
