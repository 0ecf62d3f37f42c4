"""The Redis client every process uses. Its timeouts turn an unresponsive Redis (up, but not
answering) into a RedisError the caller already handles, instead of a call that hangs: the
outbox relay would stop publishing and a cache invalidation would hold its activity to its timeout."""

from __future__ import annotations

from redis.asyncio import Redis

TIMEOUT_SECONDS = 1.0


def redis_client(url: str) -> Redis:
    return Redis.from_url(url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS)
