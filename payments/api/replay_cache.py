"""The fast idempotency layer: the final answer for a key, kept in Redis for 24 h. Redis trouble
is not an error: Temporal (workflow id) and PostgreSQL (UNIQUE key) still guard correctness.

An answer may hold a secret (3-D Secure's client secret), so it is sealed with the keyring, as card
tokens are, bound to its Redis key; one that no key opens (rotated away) is a miss."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from payments.config.keyring import Keyring, KeyringError, Sealed

log = structlog.get_logger(__name__)
TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class CachedAnswer:
    fingerprint: str
    body: dict[str, Any]


class ReplayCache:
    def __init__(self, redis: Redis, keyring: Keyring, ttl_seconds: int = TTL_SECONDS) -> None:
        self._redis = redis
        self._keyring = keyring
        self._ttl = ttl_seconds

    @staticmethod
    def name(scope: str, key: str) -> str:
        """The Redis key of a scope's idempotency key (init reads it in the party cache's MGET)."""
        return f"idempotency:{scope}:{key}"

    async def get(self, scope: str, key: str) -> CachedAnswer | None:
        name = self.name(scope, key)
        try:
            raw = await self._redis.get(name)
        except RedisError as exc:
            log.warning("replay_cache_unavailable", error=type(exc).__name__)
            return None
        return self.opened(name, raw)

    def opened(self, name: str, raw: bytes | str | None) -> CachedAnswer | None:
        """The answer a raw value read at `name` holds (None: a miss)."""
        if raw is None:
            return None
        stored = json.loads(raw)
        try:
            sealed = Sealed(stored["key_id"], base64.b64decode(stored["sealed"]))
            body = json.loads(self._keyring.open(sealed, name.encode()))
        except (KeyError, KeyringError):
            return None  # sealed with a key we no longer hold, or written before answers were sealed
        return CachedAnswer(stored["fingerprint"], body)

    async def put(self, scope: str, key: str, answer: CachedAnswer) -> None:
        name = self.name(scope, key)
        sealed = self._keyring.seal(json.dumps(answer.body).encode(), name.encode())
        blob = base64.b64encode(sealed.blob).decode()
        value = json.dumps({"fingerprint": answer.fingerprint, "key_id": sealed.key_id, "sealed": blob})
        try:
            await self._redis.set(name, value, ex=self._ttl, nx=True)
        except RedisError as exc:
            log.warning("replay_cache_unavailable", error=type(exc).__name__)
