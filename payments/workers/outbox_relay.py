"""Publishes outbox rows to the Redis Stream `payments.events`, oldest first, each once. A relay that
dies between XADD and marking the rows published (a killed worker, a PostgreSQL restart) sends the
batch again; a marker per event, set in the same Redis script as its XADD, turns that second send
into nothing. Markers live an hour (a relay is back long before); past that, consumers still dedupe
on `event_id`. Several workers can relay at once: rows are claimed with FOR UPDATE SKIP LOCKED.

Redis keeps no record of its own: if it loses its data, `payments events republish --since T`
sends the outbox's events from T again (`republish`). A marker goes with its stream entry (one
script), so an event still in the stream is not added twice within the marker's hour; consumers
dedupe on `event_id` in any case."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payments.activities.metrics import OUTBOX_LAG
from payments.schema.tables import OutboxEvent
from payments.workers.polling import IDLE_SECONDS, poll_until_stopped

STREAM = "payments.events"
MARKER_SECONDS = 3600
# Each event of a batch XADDed unless it was added already, one script for the whole batch: KEYS =
# stream, then a marker per event; ARGV = marker ttl, fields per event, then the events' fields.
# Answers the entries added.
_ADD_ONCE = """
local per = tonumber(ARGV[2])
local added = 0
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then
    local first = 3 + (i - 2) * per
    redis.call('XADD', KEYS[1], '*', unpack(ARGV, first, first + per - 1))
    added = added + 1
  end
end
return added
"""


class OutboxRelay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        redis: Redis,
        stream: str = STREAM,
        batch_size: int = 200,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self._sessions = sessions
        self._redis = redis
        self._add_once = redis.register_script(_ADD_ONCE)  # for its sha; loaded on NOSCRIPT only
        self.stream = stream
        self._batch_size = batch_size
        self._idle_seconds = idle_seconds

    async def publish_batch(self) -> int:
        async with self._sessions.begin() as session:
            rows = (
                (
                    await session.execute(
                        select(OutboxEvent)
                        .where(OutboxEvent.published_at.is_(None))
                        .order_by(OutboxEvent.id)
                        .limit(self._batch_size)
                        .with_for_update(skip_locked=True)
                    )
                )
                .scalars()
                .all()
            )
            OUTBOX_LAG.set((datetime.now(UTC) - rows[0].created_at).total_seconds() if rows else 0)
            if not rows:
                return 0
            await self._add(rows)
            await session.execute(
                update(OutboxEvent).where(OutboxEvent.id.in_([r.id for r in rows])).values(published_at=func.now())
            )
            return len(rows)

    async def _add(self, rows: Sequence[OutboxEvent]) -> int:
        """XADD each row unless its marker says it is in the stream already, in one script for the
        batch; the entries added. EVALSHA itself, not the registered Script: through a pipeline
        redis-py sent SCRIPT EXISTS first. A server without the script (restarted, flushed) answers
        NOSCRIPT: load it and send the batch again."""
        markers: list[str] = []
        fields: list[str] = []
        for row in rows:
            event = {
                "event_id": str(row.id),
                "type": row.type,
                "aggregate_id": row.aggregate_id,
                "payload": json.dumps(row.payload),
                "created_at": row.created_at.isoformat(),
            }
            markers.append(f"{self.stream}:published:{row.id}")
            fields.extend(item for pair in event.items() for item in pair)
        keys: list[str] = [self.stream, *markers]
        args: list[str | int] = [MARKER_SECONDS, len(fields) // len(rows), *fields]
        try:
            added = await self._redis.evalsha(self._add_once.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self._redis.script_load(_ADD_ONCE)
            added = await self._redis.evalsha(self._add_once.sha, len(keys), *keys, *args)
        return int(added)

    async def republish(self, since: datetime, page_size: int = 1000) -> tuple[int, int]:
        """The events created from `since` on, in id order, sent again: (events read, entries
        added). Rows are read, never claimed or changed, so the relay runs on beside it."""
        first = await self._first_id_since(since)
        read = added = 0
        after = (first or 0) - 1
        while first is not None and (rows := await self._page(after, page_size)):
            read, added, after = read + len(rows), added + await self._add(rows), rows[-1].id
        return read, added

    async def _first_id_since(self, since: datetime) -> int | None:
        """The first event created at or after `since`, found by bisecting the ids (they grow with
        time): a few dozen primary-key reads whatever the outbox's size, where a filter on
        created_at would scan it. Exact to within a transaction's length (created_at is when its
        transaction began): an operator gives `since` a minute's margin."""
        async with self._sessions() as session:

            async def reached(event_id: int) -> bool:
                at = select(OutboxEvent.created_at).where(OutboxEvent.id >= event_id).order_by(OutboxEvent.id).limit(1)
                created_at = await session.scalar(at)
                return created_at is not None and created_at >= since

            low, high = (await session.execute(select(func.min(OutboxEvent.id), func.max(OutboxEvent.id)))).one()
            if high is None or not await reached(high):
                return None
            while low < high:
                middle = (low + high) // 2
                low, high = (low, middle) if await reached(middle) else (middle + 1, high)
            return int(low)

    async def _page(self, after: int, size: int) -> Sequence[OutboxEvent]:
        async with self._sessions() as session:
            query = select(OutboxEvent).where(OutboxEvent.id > after).order_by(OutboxEvent.id).limit(size)
            return (await session.execute(query)).scalars().all()

    async def run(self, stop: asyncio.Event) -> None:
        await poll_until_stopped(
            self.publish_batch,
            stop,
            self._idle_seconds,
            (RedisError, SQLAlchemyError, OSError),
            "outbox_relay",
            full=self._batch_size,
        )
