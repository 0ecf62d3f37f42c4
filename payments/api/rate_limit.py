"""A Redis token bucket per caller, shared by every API process. When Redis is unreachable each
process falls back to buckets of its own: looser (one bucket per process, not per fleet) but never
unlimited, so an outage of Redis does not open the API to floods.

Tokens are taken from Redis a few at a time (a lease), and a process spends what it took on the
caller's next requests for LEASE_SECONDS without asking Redis again: a user's init and confirm cost
one script instead of two. A lease's size follows the caller's pace: twice the last for a caller
that spent it within half its time (Stripe's webhooks from one address, at twice the payment
rate), up to a quarter of the burst; the same for one that spent it later; half for one that let it
run out. Every request admitted spent a token the fleet's bucket gave out, so the rate holds
exactly as before. The burst may be exceeded by what processes hold and have not spent yet: for a
busy caller up to a quarter of its burst per API process (with four processes, up to twice its
burst at once), for a caller seen once 3 tokens; and what a process holds that its caller does not
come back for within LEASE_SECONDS is lost (that caller gets less, never more). Refusals still come
from the shared bucket, before a body is read."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)

# The bucket is its debt: a key whose time to live is the time the tokens taken and not yet refilled
# take to refill (no key: a full bucket), so Redis's expiry is the bucket's clock. PTTL and SET PX,
# two commands per script, atomic in Redis (a "tokens at" string took three: TIME, GET and SET).
# Kept in milliseconds, so that no rounding refuses a token that is there. Takes up to ARGV[3] whole
# tokens (at least one) if there is one; answers {wait in seconds, tokens taken}. Redis's clock
# stepping back by J would keep each caller's debt J longer (TIME's refill paused for J instead).
_BUCKET_SCRIPT = """
local per_token = 1000 / tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local debt = math.max(0, redis.call('PTTL', KEYS[1]))
local tokens = math.floor((burst * per_token - debt) / per_token + 1e-9)
if tokens < 1 then
  return {tostring((debt - (burst - 1) * per_token) / 1000), 0}
end
local taken = math.min(want, tokens)
redis.call('SET', KEYS[1], '1', 'PX', debt + math.ceil(taken * per_token - 1e-9))
return {'0', taken}
"""

LEASE = 4  # tokens first taken from Redis for a caller
LEASE_SECONDS = 2.0  # how long a process spends tokens it took for a caller


# Not "bucket:", whose "tokens at" strings live up to the burst's refill time and a second: read by
# their time to live, they would count as debt. A key also names its bucket's rate and burst (a debt
# is time at its own rate: read at another, a slow bucket's debt would refuse a fast one's caller
# for minutes), so processes with other limits keep buckets of their own. While a deploy runs the
# old release beside the new (or changes the limits), a caller has a bucket in each: up to twice
# its burst, for as long as both run.
KEY_PREFIX = "bucket-debt:"


@dataclass(frozen=True)
class Lease:
    tokens: int  # left to spend
    taken_at: float  # monotonic
    size: int  # given by Redis

    @property
    def until(self) -> float:
        return self.taken_at + LEASE_SECONDS


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int


class LocalBuckets:
    """The same token bucket in process memory; the least recently seen callers are forgotten
    beyond `capacity`, so a flood of new callers cannot grow it without bound."""

    def __init__(self, per_second: float, burst: int, capacity: int = 10_000) -> None:
        self._per_second = per_second
        self._burst = burst
        self._capacity = capacity
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def wait(self, caller: str) -> float:
        now = time.monotonic()
        tokens, at = self._buckets.pop(caller, (float(self._burst), now))
        tokens = min(self._burst, tokens + (now - at) * self._per_second)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self._per_second
        self._buckets[caller] = (tokens, now)
        while len(self._buckets) > self._capacity:
            self._buckets.popitem(last=False)
        return wait


class RateLimiter:
    def __init__(self, redis: Redis, per_second: float, burst: int, capacity: int = 10_000) -> None:
        self._script = redis.register_script(_BUCKET_SCRIPT)
        self._key_prefix = f"{KEY_PREFIX}{per_second:g}/{burst}:"
        self._per_second = per_second
        self._burst = burst
        self._largest_lease = max(LEASE, burst // 4)
        self._fallback = LocalBuckets(per_second, burst)
        self._held: OrderedDict[str, Lease] = OrderedDict()
        self._capacity = capacity

    async def take(self, caller: str) -> Decision:
        now = time.monotonic()
        held = self._held.pop(caller, None)
        if held is not None and now < held.until and held.tokens >= 1:
            self._held[caller] = Lease(held.tokens - 1, held.taken_at, held.size)
            return Decision(True, 1)
        size = self._next_size(held, now)
        try:
            answer = await self._script(
                keys=[f"{self._key_prefix}{caller}"], args=[self._per_second, self._burst, size]
            )
            wait, taken = float(answer[0]), int(answer[1])
        except RedisError as exc:
            log.warning("rate_limit_fallback", error=type(exc).__name__)
            wait, taken = self._fallback.wait(caller), 0
        if taken >= 1:  # kept when all is spent too: its size tells how busy the caller is
            self._hold(caller, Lease(taken - 1, now, taken))
        return Decision(wait == 0, max(1, math.ceil(wait)))

    def _next_size(self, held: Lease | None, now: float) -> int:
        if held is None:
            return LEASE
        if now >= held.until:  # run out: the caller comes less often than the lease lasts
            return max(LEASE, held.size // 2)
        if now < held.taken_at + LEASE_SECONDS / 2:  # spent within half its time
            return min(2 * held.size, self._largest_lease)
        return held.size

    def _hold(self, caller: str, lease: Lease) -> None:
        """Keep a lease, together with one that an overlapping request of the same caller stored
        while this one waited on Redis: the later would otherwise drop the earlier's tokens."""
        other = self._held.pop(caller, None)
        if other is not None and time.monotonic() < other.until:
            lease = Lease(lease.tokens + other.tokens, max(lease.taken_at, other.taken_at), max(lease.size, other.size))
        self._held[caller] = lease
        while len(self._held) > self._capacity:
            self._held.popitem(last=False)
