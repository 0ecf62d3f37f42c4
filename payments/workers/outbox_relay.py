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
# XADD unless this event was added already: KEYS = stream, marker; ARGV = marker ttl, fields...
_ADD_ONCE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
end
return false
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
            calls: list[list[str | int]] = []
            for row in rows:
                fields = {
                    "event_id": str(row.id),
                    "type": row.type,
                    "aggregate_id": row.aggregate_id,
                    "payload": json.dumps(row.payload),
                    "created_at": row.created_at.isoformat(),
                }
                keys = [self.stream, f"{self.stream}:published:{row.id}"]
                calls.append([*keys, MARKER_SECONDS, *(item for pair in fields.items() for item in pair)])
            await self._add_all(calls)
            await session.execute(
                update(OutboxEvent).where(OutboxEvent.id.in_([r.id for r in rows])).values(published_at=func.now())
            )
            return len(rows)

    async def _add_all(self, calls: list[list[str | int]]) -> None:
        """EVALSHA of each event in one pipeline. Not the registered Script through the pipeline:
        redis-py sends SCRIPT EXISTS before every such pipeline (one more command per batch). A
        server without the script (restarted, flushed) answers NOSCRIPT: load it and send the batch
        again (an event it had added is not added twice: its marker is set)."""
        for attempt in (1, 2):
            pipe = self._redis.pipeline(transaction=False)
            for call in calls:
                pipe.evalsha(self._add_once.sha, 2, *call)
            try:
                await pipe.execute()
                return
            except NoScriptError:
                if attempt == 2:
                    raise
                await self._redis.script_load(_ADD_ONCE)

    async def run(self, stop: asyncio.Event) -> None:
        await poll_until_stopped(
            self.publish_batch,
            stop,
            self._idle_seconds,
            (RedisError, SQLAlchemyError, OSError),
            "outbox_relay",
            full=self._batch_size,
        )
