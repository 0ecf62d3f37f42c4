"""Publishes outbox rows to the Redis Stream `payments.events`, oldest first, each once. A relay that
dies between XADD and marking the rows published (a killed worker, a PostgreSQL restart) sends the
batch again; a marker per event, set in the same Redis script as its XADD, turns that second send
into nothing. Markers live an hour (a relay is back long before); past that, consumers still dedupe
on `event_id`. Several workers can relay at once: rows are claimed with FOR UPDATE SKIP LOCKED."""

from __future__ import annotations

import asyncio
import json
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
_ADD_ONCE = """
local per = tonumber(ARGV[2])
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then
    local first = 3 + (i - 2) * per
    redis.call('XADD', KEYS[1], '*', unpack(ARGV, first, first + per - 1))
  end
end
return #KEYS - 1
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
            await self._add_all([self.stream, *markers], [MARKER_SECONDS, len(fields) // len(rows), *fields])
            await session.execute(
                update(OutboxEvent).where(OutboxEvent.id.in_([r.id for r in rows])).values(published_at=func.now())
            )
            return len(rows)

    async def _add_all(self, keys: list[str], args: list[str | int]) -> None:
        """One EVALSHA for the batch (not the registered Script: its call is EVALSHA too, but through
        a pipeline redis-py sent SCRIPT EXISTS first). A server without the script (restarted,
        flushed) answers NOSCRIPT: load it and send the batch again."""
        try:
            await self._redis.evalsha(self._add_once.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self._redis.script_load(_ADD_ONCE)
            await self._redis.evalsha(self._add_once.sha, len(keys), *keys, *args)

    async def run(self, stop: asyncio.Event) -> None:
        await poll_until_stopped(
            self.publish_batch,
            stop,
            self._idle_seconds,
            (RedisError, SQLAlchemyError, OSError),
            "outbox_relay",
            full=self._batch_size,
        )
