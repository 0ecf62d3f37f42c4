"""The Redis-lost and Temporal-lost drills in small (`python -m drills NAME --count 24`), both on one
throwaway stack (one start instead of two; Redis lost first, as its check wants every outbox event
of the stack in the stream once, and republishes from its own load's start): each under 24 seeded
payments, each must end with no violation: every outbox event in the stream once, nothing left in
flight without a workflow, no money lost or moved twice."""

import asyncio
from collections.abc import Iterator

import pytest

from devstack.throwaway import Stack, running_stack
from drills import redis_lost, temporal_lost

SEED = 20261204
COUNT = 24


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack(None, temporal_lost.QUICK_SETTINGS) as stack:
        yield stack


@pytest.mark.drill
@pytest.mark.timeout(300)
def test_redis_lost_then_republish_puts_every_outbox_event_in_the_stream_once(stack: Stack) -> None:
    report = asyncio.run(redis_lost.drill(stack, COUNT, SEED, away_for=2))
    assert report.violations == 0, report.table()
    assert report.figures["republish: entries added"] > 0, report.table()  # the loss took entries with it


@pytest.mark.drill
@pytest.mark.timeout(300)
def test_temporal_lost_settles_everything_in_flight_from_stripe_and_our_rows(stack: Stack) -> None:
    report = asyncio.run(temporal_lost.drill(stack, COUNT, SEED + 1))
    assert report.violations == 0, report.table()
    settled = next(c for c in report.checks if c.name == "settled")
    assert sum(n for k, n in settled.figures.items() if k.endswith("in flight at loss")) > 0, report.table()
