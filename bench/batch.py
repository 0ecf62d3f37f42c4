"""`make bench-batch`: the batch work at the seed's scale, each part on its own throwaway stack.

1. A payout run over N merchants (default 10,000), each with captured payments as history leaves
   them (bench/reconciliation.py's seeding), started by triggering the `payouts-daily` Schedule:
   its wall time, merchants paid/failed, the Temporal history of every run in its continue-as-new
   chain, then the money checks of the chaos run (one payout and one Stripe transfer per merchant,
   a balanced ledger that matches captures less payouts).
2. Reconciliation of M payments (default 1,000,000; bench/reconciliation.py): objects/s and the
   peak memory of the worker, the emulator and PostgreSQL.

    make bench-batch                                                  # 10 to 25 minutes
    make bench-batch BATCH_ARGS="--merchants 1000 --payments 0"       # the payout run alone
    make bench-batch BATCH_ARGS="--payout-concurrency 20 --payout-page-size 500"
    make bench-batch BATCH_ARGS="--payments 0 --workers 2"            # the payout run on two workers
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from temporalio.client import Client, ScheduleActionExecutionStartWorkflow
from temporalio.service import RPCError

from bench import reconciliation, scale
from bench.stats import loadavg
from devstack import money_checks as checks
from devstack.money_checks import stripe_state
from devstack.throwaway import Stack, running_stack
from payments.config.temporal import connect
from payments.schema.database import create_engine, session_factory
from payments.schema.messages import PayoutRunSummary
from payments.schema.tables import Payout, Transaction
from payments.workers.schedules import PAYOUT_SCHEDULES

SCHEDULE_WAIT = 60.0  # s for the Schedule to exist (the worker makes it at start) and start the run


async def trigger_payout_run(client: Client) -> ScheduleActionExecutionStartWorkflow:
    """Trigger the daily Schedule (what an operator's "Trigger" does) and return the run it started."""
    daily = client.get_schedule_handle(PAYOUT_SCHEDULES["daily"])
    deadline = time.monotonic() + SCHEDULE_WAIT
    triggered = False
    while time.monotonic() < deadline:
        try:
            if not triggered:
                await daily.trigger()
                triggered = True
            actions = (await daily.describe()).info.recent_actions
        except RPCError:  # not created yet
            actions = []
        started = [a.action for a in actions if isinstance(a.action, ScheduleActionExecutionStartWorkflow)]
        if started:
            return started[-1]
        await asyncio.sleep(0.2)  # polling a condition with a deadline
    raise RuntimeError(f"the {PAYOUT_SCHEDULES['daily']} Schedule started no run within {SCHEDULE_WAIT:.0f} s")


async def history_sizes(client: Client, workflow_id: str, run_id: str) -> list[tuple[int, int]]:
    """(events, bytes) of each run in the continue-as-new chain that starts at `run_id`."""
    sizes = []
    next_run: str | None = run_id
    while next_run:
        run = client.get_workflow_handle(workflow_id, run_id=next_run)
        described = await run.describe()
        sizes.append((described.history_length, described.raw_info.history_size_bytes))
        last = (await run.fetch_history()).events[-1]
        continued = last.workflow_execution_continued_as_new_event_attributes
        next_run = (
            continued.new_execution_run_id
            if last.HasField("workflow_execution_continued_as_new_event_attributes")
            else None
        )
    return sizes


async def money_checks(stack: Stack, merchants: list[str]) -> list[checks.Check]:
    """The chaos run's checks of payouts and the ledger, and exactly one payout per merchant."""
    stripe = await asyncio.to_thread(stripe_state, stack)
    engine = create_engine(stack.database_url())
    try:
        async with session_factory(engine)() as session:
            txs = {tx.id: tx for tx in await checks.all_rows(session, Transaction)}
            payouts = await checks.all_rows(session, Payout)
            found = [checks.payout_transfers(payouts, stripe), await checks.ledger(session, txs, payouts)]
    finally:
        await engine.dispose()
    per_merchant = Counter(p.merchant_id for p in payouts if p.status == "paid")
    one_each = checks.Check("one payout per merchant", {"merchants": len(merchants), "paid": len(per_merchant)})
    one_each.violations += [f"{m}: {per_merchant[m]} paid payouts" for m in merchants if per_merchant[m] != 1]
    return [*found, one_each]


async def payout_run(stack: Stack, merchants: int, workers: int = 1) -> None:
    end = datetime.now(UTC) - timedelta(days=1)  # yesterday's sales, paid out today
    began = time.perf_counter()
    shops = await reconciliation.seed(stack, merchants, end - timedelta(hours=1), end, merchants=merchants)
    print(f"seeded {merchants} merchants with a captured payment each in {time.perf_counter() - began:.1f} s")
    client = await connect(stack.settings)
    if workers > 1:  # the children of a run go to whichever worker polls the task queue
        await scale.add_workers(stack, client, workers)
        print(f"{workers} worker processes poll the task queue", flush=True)
    began = time.perf_counter()
    started = await trigger_payout_run(client)
    summary = await client.get_workflow_handle(started.workflow_id, result_type=PayoutRunSummary).result()
    elapsed = time.perf_counter() - began
    print(
        f"payout run over {merchants} merchants: {elapsed:.1f} s ({loadavg()}); paid {summary.paid}, "
        f"failed {summary.failed}, nothing to pay {summary.nothing_to_pay}, already paid {summary.already_paid}"
    )
    sizes = await history_sizes(client, started.workflow_id, started.first_execution_run_id)
    events, size = max(sizes, key=lambda s: s[1])
    print(
        f"Temporal history: {len(sizes)} runs, {sum(e for e, _ in sizes)} events, "
        f"{sum(b for _, b in sizes) / 2**20:.1f} MiB in all; the largest run {events} events, {size / 2**10:.0f} KiB"
    )
    violations = 0
    for check in await money_checks(stack, shops):
        figures = ", ".join(f"{k} {v}" for k, v in check.figures.items())
        print(f"  check {check.name}: {figures}; {len(check.violations)} violations {check.violations[:3]}")
        violations += len(check.violations)
    if violations:
        raise SystemExit(f"the payout run broke {violations} invariants")


async def main(args: argparse.Namespace) -> None:
    tuning = {"PAYOUT_CONCURRENCY": args.payout_concurrency, "PAYOUT_PAGE_SIZE": args.payout_page_size}
    settings = {f"PAYMENTS_{name}": str(value) for name, value in tuning.items() if value is not None}
    if args.merchants:
        with running_stack(args.api, settings) as stack:
            await payout_run(stack, args.merchants, args.workers)
    if args.payments:
        with running_stack(args.api) as stack:
            await reconciliation.reconcile(stack, args.payments, workers=args.workers)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", help="a running stack's API (default: throwaway stacks)")
    parser.add_argument("--merchants", type=int, default=10_000, help="merchants in the payout run (0: skip it)")
    parser.add_argument("--payments", type=int, default=1_000_000, help="payments to reconcile (0: skip it)")
    parser.add_argument("--payout-concurrency", type=int, help="the payout stack's setting (default: the default)")
    parser.add_argument("--payout-page-size", type=int, help="the payout stack's setting (default: the default)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes in each run (throwaway stacks)")
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
