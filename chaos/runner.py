"""`make chaos` / `python -m chaos --seed N --count N`: a seeded workload against a throwaway stack
under a seeded fault schedule; then settle, check the invariants, print the figures, and exit 1 on
any violation. The same seed gives the same plan and schedule, so a failure replays."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import async_sessionmaker

from chaos.checks import Check, run_checks
from chaos.faults import FaultInjector, make_schedule
from devstack.money_checks import stripe_state
from devstack.throwaway import Stack, running_stack
from devstack.workload import Client, Tally, Workload, make_parties, make_plan, settle
from payments.schema.database import create_engine

# A Stripe call that hangs (a timeout after commit) is given up after 2 s, then retried.
CHAOS_SETTINGS = {"PAYMENTS_STRIPE_TIMEOUT_SECONDS": "2"}
SETTLE_WITHIN = 180.0


@dataclass
class Report:
    checks: list[Check]
    faults: dict[str, int]
    seconds: dict[str, float]

    @property
    def violations(self) -> int:
        return sum(len(c.violations) for c in self.checks)

    def table(self, shown: int = 10) -> str:
        lines = [f"{'check':<16} {'violations':>10}  figures"]
        for check in self.checks:
            figures = ", ".join(f"{k} {v}" for k, v in check.figures.items())
            lines.append(f"{check.name:<16} {len(check.violations):>10}  {figures}")
        lines.append("faults: " + ", ".join(f"{k} {v}" for k, v in self.faults.items()))
        lines.append("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in self.seconds.items()))
        for check in self.checks:
            lines += [f"VIOLATION {check.name}: {v}" for v in check.violations[:shown]]
            if len(check.violations) > shown:
                lines.append(f"VIOLATION {check.name}: ... {len(check.violations) - shown} more")
        return "\n".join(lines)


async def chaos_run(stack: Stack, seed: int, count: int, concurrency: int, settle_within: float) -> Report:
    plan, schedule, tally = make_plan(seed, count), make_schedule(seed, count), Tally()
    seconds: dict[str, float] = {}
    engine = create_engine(stack.database_url(), pool_size=2)
    redis = Redis.from_url(stack.redis_url())
    try:
        async with (
            httpx.AsyncClient(base_url=stack.api, timeout=30) as http,
            httpx.AsyncClient(base_url=f"{stack.stripe_api_base()}/_emulator", timeout=10) as emulator,
        ):
            client = Client(http, tally)
            workload = Workload(client, await make_parties(stack, client, emulator, plan), tally)
            injector = FaultInjector(stack, schedule, emulator, tally)
            print(f"seed {seed}: {count} payments, {len(plan.payouts)} payouts; faults {schedule}", flush=True)
            started = time.monotonic()
            await injector.start_stripe_faults()
            done = asyncio.Event()

            async def workload_then_done() -> None:
                try:
                    await workload.run(plan, concurrency)
                finally:
                    done.set()

            try:
                async with asyncio.TaskGroup() as group:  # a fault that cannot be applied ends the run
                    group.create_task(injector.run(lambda: tally.started / count, done))
                    group.create_task(workload_then_done())
            finally:
                await injector.stop_stripe_faults()
            seconds["workload"] = time.monotonic() - started
            sessions = async_sessionmaker(engine, expire_on_commit=False)
            await settle(sessions, settle_within)
            seconds["settle"] = time.monotonic() - started - seconds["workload"]
            async with sessions() as session:
                checks = await run_checks(session, redis, stripe_state(stack), plan, tally)
        return Report(checks, dict(injector.counts), seconds)
    finally:
        await redis.aclose()
        await engine.dispose()


def keep_evidence(stack_dir: Path, seed: int) -> None:
    """The throwaway stack's folder goes with it: keep its logs and a copy of Temporal's database,
    whose workflow histories explain a violation (`temporal server start-dev --db-filename …`)."""
    kept = Path(tempfile.gettempdir()) / f"payments-chaos-seed-{seed}"
    shutil.copytree(stack_dir / "logs", kept / "logs", dirs_exist_ok=True)
    with sqlite3.connect(stack_dir / "temporal.db") as live, sqlite3.connect(kept / "temporal.db") as copy:
        live.backup(copy)  # consistent while the server still writes
    print(f"logs and Temporal's database of the stack: {kept}", flush=True)


def run(seed: int, count: int, concurrency: int, settle_within: float = SETTLE_WITHIN) -> Report:
    """Start a throwaway stack, run, print the table."""
    with running_stack(None, CHAOS_SETTINGS) as stack:
        report = asyncio.run(chaos_run(stack, seed, count, concurrency, settle_within))
        if report.violations:
            keep_evidence(Path(stack.settings.devstack_dir), seed)
    print(report.table(), flush=True)
    return report
