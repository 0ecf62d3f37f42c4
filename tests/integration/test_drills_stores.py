"""The Redis-lost, disk-lost and Temporal-lost drills in small (`python -m drills NAME --count N`),
all on one throwaway stack (one start instead of three), started with what each needs: Barman's
WAL receiver beside PostgreSQL (disk-lost) and the quick catch-up of lost workflows
(temporal-lost). Their order is what their checks allow: Redis lost first, as its check wants every
outbox event of the stack in the stream once and it republishes from its own load's start; then
PostgreSQL's disk, restored from Barman, whose checks (each acknowledged payment in its end state,
every event published once, no 500) cover what the Redis drill left too; Temporal last, as
reconciliation's fixes after it add events no other drill's check expects. Each must end with no
violation: every outbox event in the stream once, no acknowledged payment missing, nothing left
in flight without a workflow, no money lost or moved twice."""

import asyncio
from collections.abc import Iterator

import pytest

from devstack.throwaway import Stack, running_stack
from drills import disk_lost, redis_lost, temporal_lost

SEED = 20261204
COUNT = 24
DISK_COUNT, DISK_SEED = 30, 1


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack(None, temporal_lost.QUICK_SETTINGS | disk_lost.SETTINGS) as stack:
        yield stack


@pytest.mark.drill
@pytest.mark.timeout(300)
def test_redis_lost_then_republish_puts_every_outbox_event_in_the_stream_once(stack: Stack) -> None:
    report = asyncio.run(redis_lost.drill(stack, COUNT, SEED, away_for=2))
    print(report.table())
    assert report.violations == 0, report.table()
    assert report.figures["republish: entries added"] > 0, report.table()  # the loss took entries with it


@pytest.mark.drill
@pytest.mark.timeout(300)
def test_disk_lost_restores_every_acknowledged_payment_from_barman(stack: Stack) -> None:
    report = asyncio.run(disk_lost.drill(stack, DISK_COUNT, DISK_SEED))
    print(report.table())
    assert report.violations == 0, report.table()
    assert report.figures["payments acknowledged"] == DISK_COUNT, report.table()
    assert report.figures["RPO: acknowledged payments missing"] == 0, report.table()
    assert "restore seconds" in report.figures, report.table()  # the loss was applied


@pytest.mark.drill
@pytest.mark.timeout(300)
def test_temporal_lost_settles_everything_in_flight_from_stripe_and_our_rows(stack: Stack) -> None:
    report = asyncio.run(temporal_lost.drill(stack, COUNT, SEED + 1))
    print(report.table())
    assert report.violations == 0, report.table()
    assert report.figures["payments of this load in flight at the loss"] > 0, report.table()
