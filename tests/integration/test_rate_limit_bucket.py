"""The fleet's token bucket in Redis, by its script: a bucket is the debt of the tokens taken, kept as
its key's time to live, so a full bucket is no key at all and Redis's expiry refills it."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from payments.api.rate_limit import _BUCKET_SCRIPT, RateLimiter
from tests.services import eventually, fresh_key

SLOW = 0.001  # a token a thousand seconds: the test's own time refills nothing


async def _take(redis: Redis, key: str, rate: float, burst: int, want: int) -> tuple[float, int]:
    wait, taken = await redis.register_script(_BUCKET_SCRIPT)(keys=[key], args=[rate, burst, want])
    return float(wait), int(taken)


async def test_a_new_bucket_gives_its_burst_then_refuses_with_the_wait_for_one_token(redis: Redis) -> None:
    key = f"test-bucket:{fresh_key()}"
    assert await _take(redis, key, SLOW, burst=5, want=4) == (0, 4)
    assert 3_999_000 <= await redis.pttl(key) <= 4_000_000  # four tokens owed: 4,000 s to refill
    assert await _take(redis, key, SLOW, burst=5, want=4) == (0, 1)  # what is left, not what was asked
    owed = await redis.pttl(key)
    assert 4_999_000 <= owed <= 5_000_000
    wait, taken = await _take(redis, key, SLOW, burst=5, want=1)
    assert taken == 0 and 999 < wait <= 1000
    assert owed - 1000 <= await redis.pttl(key) <= owed  # a refusal writes nothing


async def test_tokens_come_back_at_the_rate(redis: Redis) -> None:
    key = f"test-bucket:{fresh_key()}"
    assert await _take(redis, key, SLOW, burst=5, want=5) == (0, 5)
    await redis.pexpire(key, 1_500_000)  # as if 3,500 s had passed: 3.5 tokens back
    assert await _take(redis, key, SLOW, burst=5, want=5) == (0, 3)
    assert 4_499_000 <= await redis.pttl(key) <= 4_500_000  # the half token still owed, and three more


async def test_a_refused_caller_gets_a_token_once_its_wait_has_passed_and_a_full_bucket_leaves_no_key(
    redis: Redis,
) -> None:
    key, rate = f"test-bucket:{fresh_key()}", 20.0
    took_at = time.monotonic()
    assert await _take(redis, key, rate, burst=1, want=1) == (0, 1)
    wait, taken = await _take(redis, key, rate, burst=1, want=1)
    assert taken == 0 and 0 < wait <= 1 / rate
    await eventually(lambda: _take(redis, key, rate, burst=1, want=1), lambda answer: answer[1] == 1, "a token back")
    assert time.monotonic() - took_at >= 1 / rate - 0.002  # not before the rate gives it (Redis's ms)
    await eventually(lambda: redis.exists(key), lambda exists: exists == 0, "the full bucket's key gone")


async def test_processes_with_other_limits_keep_buckets_of_their_own(redis: Redis) -> None:
    """A debt is time at its bucket's own rate: a slow limiter's (a test app's, a deploy changing
    the limits) read by a fast one would refuse the caller for minutes."""
    caller = f"test-caller-{fresh_key()}"
    slow = RateLimiter(redis, per_second=0.01, burst=3)
    assert [(await slow.take(caller)).allowed for _ in range(5)] == [True, True, True, False, False]
    assert (await RateLimiter(redis, per_second=50, burst=100).take(caller)).allowed
