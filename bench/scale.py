"""Scale-out on one machine: more worker processes beside the stack's, one of them killed mid-run,
and the chaos run's money checks afterwards (one PaymentIntent per payment, at most one capture,
amounts as recorded, a balanced ledger that matches the captures)."""

from __future__ import annotations

import asyncio
import signal
import time

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from devstack.money_checks import Check, ledger, payment_intents, stripe_state
from devstack.throwaway import Stack
from payments.schema.database import session_factory
from payments.schema.tables import Payout, Transaction

SETTLE_WITHIN = 120.0


async def add_workers(stack: Stack, client: Client, total: int, within: float = 120.0) -> list[int]:
    """Start workers until `total` run, and wait until Temporal sees that many polling."""
    added = [stack.add("worker") for _ in range(total - 1)]
    request = DescribeTaskQueueRequest(
        namespace=stack.settings.temporal_namespace, task_queue=TaskQueue(name=stack.settings.temporal_task_queue)
    )
    deadline = time.monotonic() + within
    while True:
        pollers = (await client.workflow_service.describe_task_queue(request)).pollers
        if len({poller.identity for poller in pollers}) >= total:
            return added
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(pollers)} of {total} workers poll after {within:.0f} s")
        await asyncio.sleep(0.5)  # polling a condition with a deadline


async def kill_later(stack: Stack, pid: int, after: float) -> None:
    await asyncio.sleep(after)  # the moment of the fault, as the chaos run picks one
    for process in stack.replacements:
        if process.pid == pid and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            print(f"  killed worker {pid} (SIGKILL) {after:.0f} s into the run", flush=True)


async def money_checks(stack: Stack, engine: AsyncEngine) -> list[Check]:
    """Once no payment is pending (bounded wait), the chaos run's PaymentIntent and ledger checks."""
    sessions = session_factory(engine)
    deadline = time.monotonic() + SETTLE_WITHIN
    while True:
        async with sessions() as session:
            pending = await session.scalar(
                select(func.count()).select_from(Transaction).where(Transaction.status == "pending")
            )
        if not pending or time.monotonic() > deadline:
            break
        await asyncio.sleep(1.0)  # polling a condition with a deadline
    async with sessions() as session:
        txs = {tx.id: tx for tx in (await session.scalars(select(Transaction))).all()}
        payouts = list((await session.scalars(select(Payout))).all())
        state = await asyncio.to_thread(stripe_state, stack)
        return [payment_intents(txs, state), await ledger(session, txs, payouts)]


def checks_report(checks: list[Check]) -> str:
    lines = []
    for check in checks:
        figures = ", ".join(f"{k} {v}" for k, v in check.figures.items())
        verdict = "ok" if not check.violations else f"{len(check.violations)} VIOLATIONS"
        lines.append(f"check {check.name}: {verdict} ({figures})")
        lines.extend(f"    {violation}" for violation in check.violations[:5])
    return "\n".join(lines)
