"""The limiter's leased tokens: a process asks Redis once per lease of one caller's requests, sizes
the next lease by how fast the last was spent, never admits more than Redis gave out, and forgets
what it holds after LEASE_SECONDS."""

import asyncio
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from payments.api import rate_limit
from payments.api.rate_limit import LEASE, RateLimiter


class _Bucket:
    """The bucket script's answers for a bucket that never refills."""

    def __init__(self, tokens: int, down: bool = False) -> None:
        self.tokens, self.calls, self.down = tokens, 0, down

    async def __call__(self, keys: list[str], args: list[Any]) -> list[Any]:
        self.calls += 1
        if self.down:
            raise RedisConnectionError("down")
        if self.tokens < 1:
            return [b"2.5", 0]
        taken = min(int(args[2]), self.tokens)
        self.tokens -= taken
        return [b"0", taken]


class _Redis:
    def __init__(self, bucket: _Bucket) -> None:
        self.bucket = bucket

    def register_script(self, script: str) -> _Bucket:
        return self.bucket


async def test_one_script_per_lease_and_no_more_admitted_than_redis_gave() -> None:
    bucket = _Bucket(tokens=10)
    limiter = RateLimiter(_Redis(bucket), per_second=1, burst=10)  # type: ignore[arg-type]
    decisions = [await limiter.take("sub:user:u") for _ in range(12)]
    assert [d.allowed for d in decisions] == [True] * 10 + [False] * 2
    assert decisions[-1].retry_after == 3
    assert bucket.calls == 3 + 2  # 4 + 4 + 2 tokens, then two refusals from Redis itself
    assert LEASE == 4


async def test_callers_do_not_share_what_a_process_holds() -> None:
    bucket = _Bucket(tokens=5)
    limiter = RateLimiter(_Redis(bucket), per_second=1, burst=5)  # type: ignore[arg-type]
    assert (await limiter.take("ip:a")).allowed  # holds 3 more for a
    assert (await limiter.take("ip:b")).allowed  # Redis' last token: b holds none
    assert not (await limiter.take("ip:c")).allowed
    assert all([(await limiter.take("ip:a")).allowed for _ in range(3)])
    assert not (await limiter.take("ip:a")).allowed


async def test_held_tokens_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = _Bucket(tokens=100)
    limiter = RateLimiter(_Redis(bucket), per_second=1, burst=100)  # type: ignore[arg-type]
    clock = [1000.0]
    monkeypatch.setattr(rate_limit.time, "monotonic", lambda: clock[0])
    await limiter.take("sub:user:u")
    clock[0] += rate_limit.LEASE_SECONDS + 0.1
    await limiter.take("sub:user:u")
    assert bucket.calls == 2  # the first lease's 3 tokens were forgotten, not spent


async def test_redis_down_falls_back_to_the_local_bucket() -> None:
    bucket = _Bucket(tokens=0, down=True)
    limiter = RateLimiter(_Redis(bucket), per_second=0.01, burst=2)  # type: ignore[arg-type]
    assert [(await limiter.take("sub:x")).allowed for _ in range(3)] == [True, True, False]


async def test_a_caller_that_spends_its_lease_within_half_its_time_gets_twice_as_much_up_to_a_quarter_of_its_burst(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket = _Bucket(tokens=1000)
    limiter = RateLimiter(_Redis(bucket), per_second=50, burst=100)  # type: ignore[arg-type]
    clock = [1000.0]
    monkeypatch.setattr(rate_limit.time, "monotonic", lambda: clock[0])
    leases, admitted = [], 0
    for _ in range(4 + 8 + 16 + 25 + 25):
        before = bucket.tokens
        admitted += (await limiter.take("ip:stripe")).allowed
        if bucket.tokens != before:
            leases.append(before - bucket.tokens)
        clock[0] += 0.01
    assert leases == [4, 8, 16, 25, 25]
    assert admitted == 1000 - bucket.tokens  # no more than Redis gave out


async def test_a_lease_spent_late_keeps_its_size_and_one_that_runs_out_halves(monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = _Bucket(tokens=1000)
    limiter = RateLimiter(_Redis(bucket), per_second=50, burst=100)  # type: ignore[arg-type]
    clock = [1000.0]
    monkeypatch.setattr(rate_limit.time, "monotonic", lambda: clock[0])

    async def lease_taken_by_next_request() -> int:
        before = bucket.tokens
        await limiter.take("sub:user:u")
        return before - bucket.tokens

    for _ in range(4 + 8 + 15):  # leases of 4 and 8 spent at once, then 15 of 16
        await limiter.take("sub:user:u")
    clock[0] += 0.75 * rate_limit.LEASE_SECONDS
    await limiter.take("sub:user:u")  # the 16th, in the second half of the lease's time
    assert await lease_taken_by_next_request() == 16
    clock[0] += rate_limit.LEASE_SECONDS + 0.1  # 15 left unspent run out
    assert await lease_taken_by_next_request() == 8


async def test_overlapping_requests_of_one_caller_keep_every_token_redis_gave() -> None:
    """Each waits on Redis with nothing held; the last answer must not drop the others' tokens."""
    bucket = _Bucket(tokens=100)
    asked, all_asked = [0], asyncio.Event()

    async def slow_script(keys: list[str], args: list[Any]) -> list[Any]:
        asked[0] += 1
        if asked[0] == 4:
            all_asked.set()
        await all_asked.wait()  # answered once all four calls are in flight
        return await bucket(keys, args)

    limiter = RateLimiter(_Redis(slow_script), per_second=50, burst=100)  # type: ignore[arg-type]
    assert all(d.allowed for d in await asyncio.gather(*(limiter.take("ip:stripe") for _ in range(4))))
    assert (bucket.calls, bucket.tokens) == (4, 84)  # four leases of 4
    assert all([(await limiter.take("ip:stripe")).allowed for _ in range(12)])
    assert bucket.calls == 4  # the 12 left of them, spent without Redis
