"""What the PostgreSQL drills share: the load with the loss at its 40 %, then every invariant a chaos
run keeps (each acknowledged payment present and in its end state, Stripe and our rows one for one,
a balanced ledger, every event published, no 500) and the figures an operator
plans with: RPO (acknowledged payments missing, and how many seconds of acknowledged work that
is), RTO (seconds from the loss to the API answering again, measured by each loss) and the seconds
of 503s the clients met."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import async_sessionmaker

from devstack.money_checks import all_rows
from devstack.ports import answers_200, wait_until
from devstack.throwaway import Stack
from devstack.workload import Tally, end_states, http, make_plan, settle
from drills.load import money_checks, run_load
from drills.report import Report
from payments.schema.database import create_engine
from payments.schema.tables import Transaction

LOSS_AT = 0.4  # share of the payments started when PostgreSQL is lost
BACK_WITHIN = 180.0  # seconds
SETTLE_WITHIN = 180.0

# Loses PostgreSQL and brings it back (in a thread: it kills and waits); returns its own figures.
Loss = Callable[[Stack], dict[str, float | int]]


def wait_for_api(stack: Stack) -> None:
    wait_until(lambda: answers_200(f"{stack.api}/readyz"), "the API did not answer again", BACK_WITHIN)


def recovery_figures(tally: Tally, acknowledged: dict[int, bool], lost_at: float) -> dict[str, float | int]:
    """`acknowledged`: each acknowledged payment's number -> whether its row is there."""
    missing = [number for number, present in acknowledged.items() if not present]
    lost = [lost_at - tally.accepted_at[number] for number in missing]
    unavailable = [t - lost_at for t in tally.unavailable_at if t >= lost_at]
    return {
        "RPO: acknowledged payments missing": len(missing),
        "RPO: seconds of acknowledged payments lost": max(lost, default=0.0),
        "seconds of 503s the clients met": max(unavailable, default=0.0),
        "payments acknowledged": len(acknowledged),
    }


async def drill(stack: Stack, name: str, count: int, seed: int, loss: Loss) -> Report:
    plan, tally = make_plan(seed, count), Tally()
    report = Report(name, {"payments": count})
    lost_at = 0.0

    async def lose() -> None:
        nonlocal lost_at
        print(f"drill {name}: PostgreSQL lost with {tally.started} payments started", flush=True)
        lost_at = time.time()
        report.figures |= await asyncio.to_thread(loss, stack)

    await run_load(stack, plan, tally, LOSS_AT, lose)
    engine = create_engine(stack.database_url(), pool_size=2)
    redis = Redis.from_url(stack.redis_url())
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        await settle(sessions, SETTLE_WITHIN)
        async with sessions() as session:
            txs = {tx.id: tx for tx in await all_rows(session, Transaction)}
            report.checks = [
                end_states(plan, tally, txs),
                *await money_checks(session, redis, stack, tally),
                http(tally),
            ]
    finally:
        await redis.aclose()
        await engine.dispose()
    acknowledged = {number: tx_id in txs for number, tx_id in tally.accepted.items()}
    report.figures |= recovery_figures(tally, acknowledged, lost_at)
    return report
