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
from functools import partial
from pathlib import Path

import httpx
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chaos.checks import IN_FLIGHT, Check, run_checks
from chaos.faults import FaultInjector, make_schedule
from chaos.workload import BROKEN_MERCHANT, Client, Parties, Plan, Tally, Workload, make_plan
from devstack.money_checks import stripe_state
from devstack.throwaway import Stack, running_stack
from payments.api.auth import mint_token
from payments.schema.database import create_engine
from payments.schema.tables import OutboxEvent, Payout, Refund, Transaction

# A Stripe call that hangs (a timeout after commit) is given up after 2 s, then retried.
CHAOS_SETTINGS = {"PAYMENTS_STRIPE_TIMEOUT_SECONDS": "2"}
SETTLE_WITHIN = 180.0
# POST /merchants answers 202 once onboarding outlasts its wait (10 s, easily passed on a loaded
# machine); set-up then polls the merchant, as a client would, until its connected account is open.
MERCHANT_READY_WITHIN = 120.0


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


async def _parties(stack: Stack, client: Client, emulator: httpx.AsyncClient, plan: Plan) -> Parties:
    """Users and merchants, made before any fault; the broken merchant's Stripe account is closed."""
    operator = {"Authorization": f"Bearer {mint_token(stack.settings, 'op_chaos', 'operator')}"}

    async def create(
        path: str, body: dict[str, str], headers: dict[str, str] = operator, accepted: tuple[int, ...] = (201,)
    ) -> dict[str, str]:
        response = await client.call("POST", path, headers, body)
        if response is None or response.status_code not in accepted:
            raise RuntimeError(f"could not set up the run: POST {path} answered {response and response.text}")
        return dict(response.json())

    async def ready(merchant: dict[str, str]) -> dict[str, str]:
        """The merchant once its connected account is open: at once on 201; on 202 (onboarding still
        running) by polling GET /merchants/{id}, which answers 404 until the row is written."""
        deadline = time.monotonic() + MERCHANT_READY_WITHIN
        while merchant.get("payout_account") is None:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"could not set up the run: merchant {merchant['id']} not ready after 202: {merchant}"
                )
            await asyncio.sleep(0.5)  # polling a condition with a deadline
            response = await client.call("GET", f"/merchants/{merchant['id']}", operator)
            if response is None or response.status_code not in (200, 404):
                raise RuntimeError(
                    f"could not set up the run: GET /merchants/{merchant['id']} answered {response and response.text}"
                )
            if response.status_code == 200:
                merchant = dict(response.json())
        return merchant

    users = [(await create("/users", {"name": f"Payer {i}"}))["id"] for i in range(plan.users)]
    merchants = [
        await ready(await create("/merchants", {"name": f"Shop {i}", "currency": "usd"}, accepted=(201, 202)))
        for i in range(plan.merchants)
    ]
    (await emulator.delete(f"/objects/{merchants[BROKEN_MERCHANT]['payout_account']}")).raise_for_status()
    token = partial(mint_token, stack.settings)

    async def save_card(user: str) -> str:
        """The user's card on file, for the saved_card payments."""
        body = {"card_token": "pm_card_visa", "idempotency_key": f"chaos-card-{user}"}
        return (await create(f"/users/{user}/cards", body, {"Authorization": f"Bearer {token(user, 'user')}"}))["id"]

    saved_cards = [await save_card(user) for user in users]
    return Parties(users, [m["id"] for m in merchants], saved_cards, token)


async def _in_flight(session: AsyncSession) -> int:
    counts = [
        select(func.count()).select_from(Transaction).where(Transaction.status.in_(IN_FLIGHT)),
        select(func.count()).select_from(Refund).where(Refund.status == "pending"),
        select(func.count()).select_from(Payout).where(Payout.status.in_(("pending", "in_transit"))),
        select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None)),
    ]
    return sum([await session.scalar(c) or 0 for c in counts])


async def settle(sessions: async_sessionmaker[AsyncSession], within: float) -> None:
    """Until nothing is pending, in transit or unpublished, or `within` s (the checks then say what)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        async with sessions() as session:
            if await _in_flight(session) == 0:
                return
        await asyncio.sleep(0.5)  # polling a condition with a deadline


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
            workload = Workload(client, await _parties(stack, client, emulator, plan), tally)
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
