"""A Redis token bucket per caller. Redis trouble lets requests through: availability of
payments matters more than throttling, and PostgreSQL and Temporal still guard correctness."""

from __future__ import annotations

import math
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)

# Refill by elapsed time at Redis' own clock, take one token if there is one; atomic in Redis.
_BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int


class RateLimiter:
    def __init__(self, redis: Redis, per_second: float, burst: int) -> None:
        self._script = redis.register_script(_BUCKET_SCRIPT)
        self._per_second = per_second
        self._burst = burst

    async def take(self, caller: str) -> Decision:
        try:
            wait = float(await self._script(keys=[f"ratelimit:{caller}"], args=[self._per_second, self._burst]))
        except RedisError as exc:
            log.warning("rate_limit_unavailable", error=type(exc).__name__)
            return Decision(True, 0)
        return Decision(wait == 0, max(1, math.ceil(wait)))
