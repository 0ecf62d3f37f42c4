"""Publishes outbox rows to the Redis Stream `payments.events`, oldest first, each once. A relay that
dies between XADD and marking the rows published (a killed worker, a PostgreSQL restart) sends the
batch again; a marker bit per event, set in the same Redis script as its XADD, turns that second
send into nothing. Markers live at least an hour (their bitmap's, an hour past its last write; a
relay is back long before); past that, consumers still dedupe on `event_id`. Several workers can
relay at once: rows are claimed with FOR UPDATE SKIP LOCKED.

Redis keeps no record of its own: if it loses its data, `payments events republish --since T`
sends the outbox's events from T again (`republish`). A marker goes with its stream entry (one
script), so an event still in the stream is not added twice while its marker lives; consumers
dedupe on `event_id` in any case. A stream lost without its markers (deleted by hand) needs them
deleted too (`payments.events:published-bits:*`) before a republish, or the events they mark are
not sent again."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
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
# The markers are bitmaps, a bit per event id, MARKER_BLOCK ids (4 KiB, and the period below's 4
# bytes) to a bitmap: one BITFIELD
# reads a batch's bits and one sets those of the events added (a SET NX per event cost a command
# each). Bits are set after their XADDs: a script that fails part way leaves the batch's events
# unmarked, to be added again (consumers dedupe), never marked and missing.
MARKER_BLOCK = 32_768
# A bitmap's time to live is renewed once a REFRESH_SECONDS period (an EXPIRE every batch cost a
# command each): past its ids' bits, the bitmap keeps the period it was last renewed in, read and
# written in the same BITFIELDs as the bits. Each relay reads the period off its own clock, so a
# bitmap lives MARKER_SECONDS - REFRESH_SECONDS - the relays' clock skew past its last write: at
# least an hour while their clocks agree within CLOCK_SKEW_SECONDS. A bitmap Redis lost reads
# period 0 and is renewed at its next write.
REFRESH_SECONDS = 300
CLOCK_SKEW_SECONDS = 300
MARKER_SECONDS = 3600 + REFRESH_SECONDS + CLOCK_SKEW_SECONDS
SCRIPT_EVENTS = 1000  # events a script call: Lua's unpack takes at most about 8,000 values
# Each event of a batch XADDed unless its bit was set already, one script for the whole batch:
# KEYS = the stream, then the batch's bitmaps; ARGV = marker ttl, the period now, where a bitmap
# keeps its period, fields per event, then per event: its bitmap's place in KEYS, its bit, its
# fields. Answers the entries added.
_ADD_ONCE = """
local ttl, period, at_period, per = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local gets, sets, events = {}, {}, {}
for k = 2, #KEYS do gets[k], sets[k] = {'GET', 'u32', at_period}, {} end
for at = 5, #ARGV, per + 2 do
  local k, bit = tonumber(ARGV[at]), ARGV[at + 1]
  local n = #gets[k]
  gets[k][n + 1], gets[k][n + 2], gets[k][n + 3] = 'GET', 'u1', bit
  events[#events + 1] = {k, n / 3 + 1, bit, at + 2}
end
local was = {}
for k = 2, #KEYS do was[k] = redis.call('BITFIELD', KEYS[k], unpack(gets[k])) end
local added = 0
for _, event in ipairs(events) do
  local k, nth, bit, first = unpack(event)
  if was[k][nth] == 0 then
    redis.call('XADD', KEYS[1], '*', unpack(ARGV, first, first + per - 1))
    local n = #sets[k]
    sets[k][n + 1], sets[k][n + 2], sets[k][n + 3], sets[k][n + 4] = 'SET', 'u1', bit, 1
    added = added + 1
  end
end
for k = 2, #KEYS do
  local renew = was[k][1] ~= period
  if renew then
    local n = #sets[k]
    sets[k][n + 1], sets[k][n + 2], sets[k][n + 3], sets[k][n + 4] = 'SET', 'u32', at_period, period
  end
  if #sets[k] > 0 then redis.call('BITFIELD', KEYS[k], unpack(sets[k])) end
  if renew then redis.call('EXPIRE', KEYS[k], ttl) end
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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._redis = redis
        self._script = redis.register_script(_ADD_ONCE)  # for its sha; loaded on NOSCRIPT only
        self.stream = stream
        self._batch_size = batch_size
        self._idle_seconds = idle_seconds
        self._clock = clock

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
            await self.add_once(rows)
            await session.execute(
                update(OutboxEvent).where(OutboxEvent.id.in_([r.id for r in rows])).values(published_at=func.now())
            )
            return len(rows)

    async def add_once(self, rows: Sequence[OutboxEvent]) -> int:
        """XADD each row unless its marker says it is in the stream already, one script per
        SCRIPT_EVENTS rows; the entries added."""
        added = 0
        for start in range(0, len(rows), SCRIPT_EVENTS):
            added += await self._add_script(rows[start : start + SCRIPT_EVENTS])
        return added

    async def _add_script(self, rows: Sequence[OutboxEvent]) -> int:
        """EVALSHA itself, not the registered Script: through a pipeline redis-py sent SCRIPT
        EXISTS first. A server without the script (restarted, flushed) answers NOSCRIPT: load it
        and send the rows again."""
        bitmaps: dict[int, int] = {}  # a block of ids: its bitmap's place in KEYS
        events: list[list[str | int]] = []
        for row in rows:
            fields = {
                "event_id": str(row.id),
                "type": row.type,
                "aggregate_id": row.aggregate_id,
                "payload": json.dumps(row.payload),
                "created_at": row.created_at.isoformat(),
            }
            place = bitmaps.setdefault(row.id // MARKER_BLOCK, len(bitmaps) + 2)
            events.append([place, row.id % MARKER_BLOCK, *(item for pair in fields.items() for item in pair)])
        # Not the per-event markers' "published:": a string marker read as a bitmap would set bits.
        keys = [self.stream, *(f"{self.stream}:published-bits:{block}" for block in bitmaps)]
        period = int(self._clock() // REFRESH_SECONDS)
        args = [MARKER_SECONDS, period, MARKER_BLOCK, len(events[0]) - 2, *(arg for event in events for arg in event)]
        try:
            added = await self._redis.evalsha(self._script.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self._redis.script_load(_ADD_ONCE)
            added = await self._redis.evalsha(self._script.sha, len(keys), *keys, *args)
        return int(added)

    async def republish(self, since: datetime, page_size: int = 1000) -> tuple[int, int]:
        """The events created from `since` on, in id order, sent again: (events read, entries
        added). Rows are read, never claimed or changed, so the relay runs on beside it."""
        first = await self._first_id_since(since)
        read = added = 0
        after = (first or 0) - 1
        while first is not None and (rows := await self._page(after, page_size)):
            read, added, after = read + len(rows), added + await self.add_once(rows), rows[-1].id
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
