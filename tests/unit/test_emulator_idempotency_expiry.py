"""The emulator's idempotency keys expire oldest first, and only once answered."""

from __future__ import annotations

import pytest

from stripe_emulator import idempotency
from stripe_emulator.idempotency import IdempotencyStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(idempotency.time, "time", clock.time)
    return clock


def test_an_answered_key_past_its_ttl_is_forgotten_and_a_younger_one_replays(clock: Clock) -> None:
    keys = IdempotencyStore(ttl_seconds=60)
    assert keys.begin("sk", "old", "f") is None
    keys.finish("sk", "old", 200, b"old")
    clock.now += 50
    assert keys.begin("sk", "young", "f") is None
    keys.finish("sk", "young", 200, b"young")

    clock.now += 20  # "old" is 70 s old, "young" 20 s
    assert keys.begin("sk", "next", "f") is None
    assert keys.begin("sk", "old", "f") is None  # forgotten: this request owns the key again
    replay = keys.begin("sk", "young", "f")
    assert replay is not None and replay.body == b"young"


def test_a_key_still_in_flight_is_kept_past_its_ttl_and_does_not_hide_older_answered_ones(clock: Clock) -> None:
    keys = IdempotencyStore(ttl_seconds=60)
    assert keys.begin("sk", "answered", "f") is None
    keys.finish("sk", "answered", 200, b"a")
    assert keys.begin("sk", "hanging", "f") is None  # never finished

    clock.now += 120
    assert keys.begin("sk", "next", "f") is None
    assert keys.in_flight("sk", "hanging")
    assert keys.begin("sk", "answered", "f") is None
