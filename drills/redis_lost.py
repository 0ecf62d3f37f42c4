"""Drill: Redis loses its data under payment load (`python -m drills redis-lost`).

Redis keeps no record of its own, but `payments.events` lives there: entries a consumer had not
read yet are gone with it. At 40 % of the load Redis is frozen for a few seconds (the API keeps
taking payments and says so in /readyz), its data directory is deleted, and it is killed; it
comes back empty. After the load, `payments events republish --since <the load's start>` sends the
outbox's events again (payments/cli/republish.py). Figures: what the API answered while Redis was away,
stream entries before and after the republish; checks: every outbox event in the stream exactly
once (devstack/money_checks.py `events`), and the money checks (drills/load.py). Exit 1 on any violation."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from devstack.ports import wait_until
from devstack.redis import RedisServer
from devstack.throwaway import Stack, running_stack
from devstack.workload import Tally, make_plan, settle
from drills.load import freeze, money_checks, run_load
from drills.report import Report
from payments.cli.republish import republish
from payments.schema.database import create_engine
from payments.schema.tables import OutboxEvent
from payments.workers.outbox_relay import STREAM

LOSS_AT = 0.4  # share of the payments started when Redis is lost
AWAY_FOR = 5.0  # seconds Redis is frozen before its data goes (`make test`'s drill: 2)
BACK_WITHIN = 60.0
SETTLE_WITHIN = 300.0


def empty_redis(stack: Stack) -> None:
    """Delete the frozen server's data directory (its append-only file) and kill it; the stack
    restarts it with the same command line, on an empty directory."""
    data = Path(stack.settings.devstack_dir) / "redis"
    shutil.rmtree(data)
    data.mkdir()
    stack.replace("redis-server", signal.SIGKILL)
    fresh = RedisServer(data, stack.settings.redis_port)
    wait_until(fresh.answers_ping, "Redis did not come back", BACK_WITHIN)


async def while_away(stack: Stack, tally: Tally, seconds: float) -> dict[str, int]:
    """What the API answered while Redis was frozen: /readyz, and the load's calls."""
    before, ready = Counter(tally.statuses), Counter[str]()
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=stack.api, timeout=10) as http:
        while time.monotonic() < deadline:
            answer = await http.get("/readyz")
            ready[f"{answer.status_code} {answer.json().get('error', {}).get('message', 'ready')}"[:80]] += 1
            await asyncio.sleep(0.5)  # a probe every half second for the outage's length
    figures = {f"while away: /readyz {k}": n for k, n in ready.items()}
    figures |= {f"while away: load answered {code}": n for code, n in sorted((tally.statuses - before).items())}
    return figures


async def stream_event_ids(redis: Redis) -> Counter[str]:
    return Counter(fields[b"event_id"].decode() for _, fields in await redis.xrange(STREAM))  # type: ignore[index, union-attr]


async def drill(stack: Stack, count: int, seed: int, away_for: float = AWAY_FOR) -> Report:
    plan, tally = make_plan(seed, count), Tally()
    engine = create_engine(stack.database_url(), pool_size=2)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    redis = Redis.from_url(stack.redis_url())
    report = Report("redis-lost", {"payments": count})

    async def lose() -> None:
        freeze(stack, "redis-server")
        report.figures |= await while_away(stack, tally, away_for)
        lost_at = time.monotonic()
        await asyncio.to_thread(empty_redis, stack)
        report.figures["seconds from data lost to Redis answering (RTO)"] = time.monotonic() - lost_at
        print(f"Redis lost with {tally.started} payments started", flush=True)

    try:
        since = datetime.now(UTC)
        await run_load(stack, plan, tally, LOSS_AT, lose)
        await settle(sessions, SETTLE_WITHIN)  # every outbox row published (to the new Redis)
        async with sessions() as session:
            report.figures["outbox events"] = await session.scalar(select(func.count()).select_from(OutboxEvent)) or 0
        report.figures["stream entries before republish"] = sum((await stream_event_ids(redis)).values())
        started = time.monotonic()
        urls = {"database_url": stack.database_url(), "redis_url": stack.redis_url()}
        read, added = await republish(stack.settings.model_copy(update=urls), since)
        report.figures["republish: events read"] = read
        report.figures["republish: entries added"] = added
        report.figures["republish: seconds"] = time.monotonic() - started
        missing = report.figures["outbox events"] - len(await stream_event_ids(redis))
        report.figures["outbox events missing from the stream after it (RPO)"] = missing
        async with sessions() as session:
            report.checks = await money_checks(session, redis, stack, tally)
        return report
    finally:
        await redis.aclose()
        await engine.dispose()


def run(count: int, seed: int) -> Report:
    with running_stack(None) as stack:
        return asyncio.run(drill(stack, count, seed))
