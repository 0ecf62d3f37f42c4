"""The fast idempotency layer: the final answer for a key, kept in Redis for 24 h. Redis trouble
is not an error: Temporal (workflow id) and PostgreSQL (UNIQUE key) still guard correctness."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)
TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class CachedAnswer:
    fingerprint: str
    body: dict[str, Any]


class ReplayCache:
    def __init__(self, redis: Redis, ttl_seconds: int = TTL_SECONDS) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    async def get(self, scope: str, key: str) -> CachedAnswer | None:
        try:
            raw = await self._redis.get(f"idempotency:{scope}:{key}")
        except RedisError as exc:
            log.warning("replay_cache_unavailable", error=type(exc).__name__)
            return None
        if raw is None:
            return None
        stored = json.loads(raw)
        return CachedAnswer(stored["fingerprint"], stored["body"])

    async def put(self, scope: str, key: str, answer: CachedAnswer) -> None:
        value = json.dumps({"fingerprint": answer.fingerprint, "body": answer.body})
        try:
            await self._redis.set(f"idempotency:{scope}:{key}", value, ex=self._ttl, nx=True)
        except RedisError as exc:
            log.warning("replay_cache_unavailable", error=type(exc).__name__)
