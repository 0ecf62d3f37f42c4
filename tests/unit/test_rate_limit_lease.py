"""The limiter's leased tokens: a process asks Redis once per LEASE requests of one caller, never
admits more than Redis gave out, and forgets what it holds after LEASE_SECONDS."""

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


async def test_a_caller_that_spends_its_lease_before_it_runs_out_gets_twice_as_much_up_to_a_quarter_of_its_burst(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket = _Bucket(tokens=1000)
    limiter = RateLimiter(_Redis(bucket), per_second=50, burst=100)  # type: ignore[arg-type]
    clock = [1000.0]
    monkeypatch.setattr(rate_limit.time, "monotonic", lambda: clock[0])
    leases = []
    for _ in range(4 + 8 + 16 + 25 + 25):
        before = bucket.tokens
        assert (await limiter.take("ip:stripe")).allowed
        if bucket.tokens != before:
            leases.append(before - bucket.tokens)
        clock[0] += 0.01
    assert leases == [4, 8, 16, 25, 25]
    assert 1000 - bucket.tokens == sum(leases)  # admitted no more than Redis gave out


async def test_a_lease_that_runs_out_unspent_starts_the_next_one_small(monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = _Bucket(tokens=1000)
    limiter = RateLimiter(_Redis(bucket), per_second=50, burst=100)  # type: ignore[arg-type]
    clock = [1000.0]
    monkeypatch.setattr(rate_limit.time, "monotonic", lambda: clock[0])
    for _ in range(4 + 8):  # two leases spent: the next would be 16
        await limiter.take("sub:user:u")
    clock[0] += rate_limit.LEASE_SECONDS + 0.1
    before = bucket.tokens
    await limiter.take("sub:user:u")
    assert before - bucket.tokens == LEASE
