"""`payments events republish --since T`: after Redis lost its data, the outbox's events from T
are sent to `payments.events` again (payments/workers/outbox_relay.py). Consumers dedupe on
`event_id`, so a T earlier than needed costs duplicates at most, never a missed event: pick the
last time Redis was known to hold its data (its last append-only fsync, or the loss minus a margin)."""

from __future__ import annotations

from datetime import datetime

from payments.config.redis import redis_client
from payments.config.settings import Settings
from payments.schema.database import create_engine, session_factory
from payments.workers.outbox_relay import OutboxRelay


async def republish(settings: Settings, since: datetime) -> tuple[int, int]:
    """(events read, stream entries added)."""
    if not settings.database_url or not settings.redis_url:
        raise RuntimeError("PAYMENTS_DATABASE_URL and PAYMENTS_REDIS_URL must be set")
    engine, redis = create_engine(settings.database_url, pool_size=1), redis_client(settings.redis_url)
    try:
        return await OutboxRelay(session_factory(engine), redis).republish(since)
    finally:
        await redis.aclose()
        await engine.dispose()
