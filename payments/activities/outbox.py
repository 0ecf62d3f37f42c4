"""The transactional outbox: an event row written in the same database transaction as the state
change it announces; the relay (payments/workers/outbox_relay.py) publishes it to Redis afterwards."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from payments.schema.tables import OutboxEvent


async def add_event(
    session: AsyncSession, event_type: str, aggregate_id: str, payload: dict[str, Any], occurrence: str = ""
) -> None:
    """At most one row per transition: a local activity retried after a commit whose ack was lost
    writes the same key, and the database keeps the first row (so consumers see one event id).
    `occurrence` tells apart events of one type that a subject legitimately has more than once."""
    key = ":".join(part for part in (aggregate_id, event_type, occurrence) if part)
    await session.execute(
        insert(OutboxEvent)
        .values(type=event_type, aggregate_id=aggregate_id, event_key=key, payload=payload)
        .on_conflict_do_nothing(index_elements=["event_key"])
    )
