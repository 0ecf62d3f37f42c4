"""Drill: Temporal loses its database under payment load (`python -m drills temporal-lost`).

At 40 % of the load the Temporal dev server is frozen, its sqlite file deleted and the server
killed; it comes back empty on the same port. A running worker notices its Schedules are gone,
creates them again and, once no Stripe call made before the loss can still be running
(PAYMENTS_RECONCILIATION_GONE_AFTER), triggers a reconciliation run, which settles every payment,
refund and payout whose workflow was lost from Stripe's state and our rows
(payments/activities/reconciliation_gone.py). Figures: what was in flight at the loss, seconds until
Temporal served again and until all of it was settled; checks: nothing left in flight with no
workflow, the money checks (drills/load.py), and each outbox event published once with the events
its aggregate's end calls for (reconciliation's own included). Exit 1 on any violation."""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowExecutionStatus

from devstack.money_checks import Check
from devstack.ports import wait_until
from devstack.temporal import TemporalDevServer
from devstack.throwaway import Stack, running_stack
from devstack.workload import Tally, make_plan, settle
from drills.load import freeze, money_checks, run_load
from drills.report import Report
from payments.activities.reconciliation_rules import NOT_FINAL
from payments.config.temporal import connect
from payments.schema.database import create_engine
from payments.schema.tables import Payout, ReconciliationLog, Refund, Transaction
from payments.workers.lost_workflows import TemporalLostWorkflows
from payments.workflows import payout as payout_workflow
from payments.workflows import refund as refund_workflow

LOSS_AT = 0.4  # share of the payments started when Temporal is lost
BACK_WITHIN = 120.0  # seconds for the new Temporal server to serve
# `make test`'s drill settles rows of lost workflows after 5 s instead of 60: no Stripe fault is
# injected, the emulator answers at once, so no call made before the loss is on its way by then.
# Its worker looks for the lost Schedules every second instead of every 10 s: the same condition,
# polled more often, so the catch-up starts once Temporal is back rather than up to 10 s later.
QUICK_SETTINGS = {"PAYMENTS_RECONCILIATION_GONE_AFTER": "PT5S", "PAYMENTS_SCHEDULES_WATCH_INTERVAL": "PT1S"}
SETTLE_WITHIN = 600.0
DISCREPANCY_AND_STATUS = (ReconciliationLog.discrepancy, ReconciliationLog.resolution_status)


@dataclass
class Loss:
    in_flight: dict[str, dict[str, str]] = field(default_factory=dict)  # open_rows at the loss
    lost_at: float = 0.0  # monotonic
    back_at: float = 0.0


async def open_rows(session: AsyncSession) -> dict[str, dict[str, str]]:
    """Payments, refunds and payouts not yet final (reconciliation's NOT_FINAL), by table: each
    row's id -> the id of the workflow that finishes it."""
    payments = select(Transaction.id, Transaction.workflow_id).where(Transaction.status.in_(NOT_FINAL[Transaction]))
    refunds = select(Refund.id, Refund.tx_id, Refund.idempotency_key).where(Refund.status.in_(NOT_FINAL[Refund]))
    payouts = select(Payout.id, Payout.merchant_id, Payout.idempotency_key).where(Payout.status.in_(NOT_FINAL[Payout]))
    return {
        "transactions": {i: w for i, w in (await session.execute(payments)).all()},
        "refunds": {i: refund_workflow.workflow_id(t, k) for i, t, k in (await session.execute(refunds)).all()},
        "payouts": {i: payout_workflow.workflow_id(m, k) for i, m, k in (await session.execute(payouts)).all()},
    }


async def orphans(
    session: AsyncSession, lost: TemporalLostWorkflows, among: dict[str, dict[str, str]] | None = None
) -> list[str]:
    """The rows (of `among`, or all) still open with no running workflow to finish them. A row in
    flight at the loss may have been taken over by a new run (a client's retry, or the API's own
    retry of a call to Temporal, started its workflow again): that one is not an orphan."""
    found = []
    for kind, rows in (await open_rows(session)).items():
        for row_id, workflow_id in rows.items():
            if among is not None and row_id not in among[kind]:
                continue
            status = await lost.status(workflow_id)
            if status != WorkflowExecutionStatus.RUNNING:
                found.append(f"{kind} {row_id} open, its workflow {status.name if status else 'gone'}")
    return found


def empty_temporal(stack: Stack) -> None:
    """Delete the frozen server's database (the file and sqlite's WAL beside it) and kill it; the
    stack restarts it with the same command line, on a new empty file."""
    settings = stack.settings
    database = Path(settings.devstack_dir) / "temporal.db"
    for path in (database, database.with_name("temporal.db-wal"), database.with_name("temporal.db-shm")):
        path.unlink(missing_ok=True)
    stack.replace("temporal", signal.SIGKILL)
    fresh = TemporalDevServer(database, settings.temporal_port, settings.temporal_ui_port, "")
    wait_until(lambda: fresh.serves(settings.temporal_namespace), "Temporal did not come back", BACK_WITHIN)


async def settled_in(
    sessions: async_sessionmaker[AsyncSession], lost: TemporalLostWorkflows, loss: Loss, within: float
) -> float | None:
    """Seconds from Temporal's return until nothing in flight at the loss was left orphaned (None: not within)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        async with sessions() as session:
            if not await orphans(session, lost, loss.in_flight):
                return time.monotonic() - loss.back_at
        await asyncio.sleep(1)  # polling our rows with a deadline
    return None


async def nothing_orphaned(
    session: AsyncSession, lost: TemporalLostWorkflows, loss: Loss, seconds: float | None
) -> Check:
    """Everything in flight at the loss is final or taken over by a running workflow, and so is
    every other open row."""
    left = await open_rows(session)
    check = Check("settled", {f"{kind} in flight at loss": len(ids) for kind, ids in loss.in_flight.items()})
    check.figures["of those taken over by a new run"] = sum(
        len(ids.keys() & left[kind].keys()) for kind, ids in loss.in_flight.items()
    )
    if seconds is None:
        check.violations.append(f"not all settled within {SETTLE_WITHIN:.0f} s of Temporal's return")
    left_open = await orphans(session, lost)
    check.figures["open without a workflow (RPO)"] = len(left_open)
    check.violations += left_open
    return check


async def drill(stack: Stack, count: int, seed: int) -> Report:
    plan, tally, loss = make_plan(seed, count), Tally(), Loss()
    engine = create_engine(stack.database_url(), pool_size=2)
    redis = Redis.from_url(stack.redis_url())
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    lost = TemporalLostWorkflows(await connect(stack.settings), stack.settings)
    report = Report("temporal-lost", {"payments": count})

    async def lose() -> None:
        freeze(stack, "temporal")
        loss.lost_at = time.monotonic()
        async with sessions() as session:
            loss.in_flight = await open_rows(session)
        await asyncio.to_thread(empty_temporal, stack)
        loss.back_at = time.monotonic()
        down = loss.back_at - loss.lost_at
        print(f"Temporal lost with {tally.started} payments started; empty and serving after {down:.1f} s", flush=True)

    try:
        started = time.monotonic()
        await run_load(stack, plan, tally, LOSS_AT, lose)
        report.figures["seconds of load"] = time.monotonic() - started
        seconds = await settled_in(sessions, lost, loss, SETTLE_WITHIN)
        await settle(sessions, SETTLE_WITHIN)  # the rest of the load
        report.figures["seconds Temporal down (RTO)"] = loss.back_at - loss.lost_at
        report.figures["seconds from return to all in flight settled"] = seconds if seconds is not None else -1.0
        # On a stack shared with other drills, rows of theirs (a declined payment waiting for
        # another card) are in flight too: this figure is the loss's own.
        ours = loss.in_flight["transactions"].keys() & set(tally.accepted.values())
        report.figures["payments of this load in flight at the loss"] = len(ours)
        report.figures["HTTP 503 answers (retried)"] = tally.statuses[503]
        report.figures["answers other than planned"] = len(tally.unexpected)
        async with sessions() as session:
            fixes = select(ReconciliationLog.discrepancy, ReconciliationLog.resolution_status, func.count())
            for discrepancy, status, n in (await session.execute(fixes.group_by(*DISCREPANCY_AND_STATUS))).all():
                report.figures[f"reconciliation: {discrepancy} ({status})"] = n
            report.checks = [await nothing_orphaned(session, lost, loss, seconds)]
            report.checks += await money_checks(session, redis, stack, tally)
        return report
    finally:
        await redis.aclose()
        await engine.dispose()


def run(count: int, seed: int, settings: dict[str, str] | None = None) -> Report:
    """`settings`: PAYMENTS_* variables of the throwaway stack (default: production's timings)."""
    with running_stack(None, settings) as stack:
        return asyncio.run(drill(stack, count, seed))
