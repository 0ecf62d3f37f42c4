"""`make bench-recon`: reconcile a window of N captured payments (default 100k) seeded straight
into the emulator and PostgreSQL, as history is; prints the run's time, its throughput and the
peak memory of the worker, the emulator and PostgreSQL over the run (bounded by the page, not the
window). `make bench-batch` (bench/batch.py) runs it at 1,000,000 payments and seeds its payout
run's merchants with the same code.

    make bench-recon                                  # a throwaway stack
    make bench-recon RECON_ARGS="--count 20000"
    make bench-recon RECON_ARGS="--count 1000000 --workers 2"   # the run read by two worker processes
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError

from bench import costs, scale
from bench.stats import loadavg
from devstack.throwaway import Stack, running_stack
from payments.activities import ledger
from payments.api.auth import mint_token
from payments.config.temporal import connect
from payments.schema.database import create_engine, session_factory
from payments.schema.messages import ReconciliationInput
from payments.schema.tables import LedgerTransaction, Merchant, Transaction
from payments.workflows.reconciliation import ReconciliationWorkflow

AMOUNT, FEE_BPS, BATCH = 1000, 290, 10_000
PEAK_ROLES = ("worker", "stripe-emulator", "postgres")


async def _created(api: httpx.AsyncClient, path: str, body: dict[str, Any], **kwargs: Any) -> Any:
    response = await api.post(path, json=body, **kwargs)
    if response.status_code != 201:
        raise RuntimeError(f"{path} answered {response.status_code}: {response.text[:200]}")
    return response.json()


async def seed_merchants(stack: Stack, api: httpx.AsyncClient, engine: AsyncEngine, count: int) -> list[str]:
    """Daily-payout merchants, each with its connected account at Stripe, as onboarding leaves them."""
    run = uuid.uuid4().hex[:8]
    ids = [f"mer_bench{run}{i:07d}" for i in range(count)]  # in keyset order
    async with engine.begin() as conn:
        for first in range(0, count, BATCH):
            batch = ids[first : first + BATCH]
            body = {"merchant_ids": batch, "currency": "usd"}
            accounts = (await _created(api, f"{stack.stripe_api_base()}/_emulator/seed/accounts", body))["ids"]
            rows = [
                {
                    "id": merchant,
                    "name": f"Bench shop {first + i}",
                    "payout_schedule": "daily",
                    "fee_bps": FEE_BPS,
                    "currency": "usd",
                    "payout_account": account,
                }
                for i, (merchant, account) in enumerate(zip(batch, accounts, strict=True))
            ]
            await conn.execute(insert(Merchant), rows)
    return ids


async def seed(stack: Stack, count: int, start: datetime, end: datetime, merchants: int = 1) -> list[str]:
    """`count` captured payments spread evenly over [start, end) and over `merchants` new merchants,
    in Stripe (the emulator: each with its charge and balance transaction), our rows and the
    ledger (each one's capture and Stripe's fee); Stripe's balance gets what they earned.
    Returns the merchants' ids."""
    operator = {"Authorization": f"Bearer {mint_token(stack.settings, 'op_bench', 'operator')}"}
    prefix = f"txb_{uuid.uuid4().hex[:8]}_"
    stripe = stack.stripe_api_base()
    first_second, last_second = int(start.timestamp()) + 1, int(end.timestamp()) - 1
    step = (end - start) / count
    engine = create_engine(stack.database_url())
    try:
        async with httpx.AsyncClient(base_url=stack.api, timeout=600) as api:
            user = (await _created(api, "/users", {"name": "Bench payer"}, headers=operator))["id"]
            shops = await seed_merchants(stack, api, engine, merchants)
            print(f"  {merchants} merchants seeded", flush=True)
            for first in range(0, count, BATCH):
                last = min(first + BATCH, count)
                history = {
                    "count": last - first,
                    "first": first,
                    "amount": AMOUNT,
                    "currency": "usd",
                    "created_from": first_second + (last_second - first_second) * first // count,
                    "created_to": first_second + (last_second - first_second) * last // count,
                    "tx_prefix": prefix,
                    "events": True,  # each capture's payment_intent.succeeded: what reconciliation reads
                    "charges": True,  # and its charge's balance transaction: what the three-way match reads
                }
                seeded = await _created(api, f"{stripe}/_emulator/seed/payment_intents", history)
                rows = [
                    {
                        "id": f"{prefix}{i}",
                        "user_id": user,
                        "merchant_id": shops[i % merchants],
                        "amount": AMOUNT,
                        "amount_captured": AMOUNT,
                        "currency": "usd",
                        "status": "confirmed",
                        "idempotency_key": f"{prefix}{i}",
                        "request_fingerprint": "bench",
                        "card_token": b"",
                        "card_token_key_id": "bench",
                        "stripe_payment_intent_id": intent,
                        "workflow_id": f"payment:{user}:{prefix}{i}",
                        "created_at": start + step * i,
                        "updated_at": start + step * i,
                    }
                    for i, intent in zip(range(first, last), seeded["ids"], strict=True)
                ]
                async with session_factory(engine).begin() as session:
                    await session.execute(insert(Transaction), rows)
                    await post_captures(session, rows, seeded["fees"])
                if last % 100_000 == 0 or last == count:
                    print(f"  {last} payments seeded", flush=True)
            await _created(api, f"{stripe}/_emulator/seed/topup", {"amount": count * AMOUNT, "currency": "usd"})
    finally:
        await engine.dispose()
    return shops


async def post_captures(session: AsyncSession, payments: list[dict[str, Any]], stripe_fees: list[int]) -> None:
    """Each payment's capture and Stripe's fee on its charge, the postings the worker makes, in bulk."""
    postings = {}
    for payment, stripe_fee in zip(payments, stripe_fees, strict=True):
        tx_id, amount = payment["id"], payment["amount_captured"]
        fee = ledger.platform_fee(amount, FEE_BPS)
        postings[f"capture:{tx_id}"] = ledger.capture_entries(payment["merchant_id"], amount, fee)
        postings[f"stripe_fee:{tx_id}"] = ledger.stripe_fee_entries(stripe_fee)
    accounts = await ledger.account_ids(session, sorted({code for entries in postings.values() for code in entries}))
    created = await session.execute(
        insert(LedgerTransaction).returning(LedgerTransaction.id, LedgerTransaction.reference),
        [{"reference": reference} for reference in postings],
    )
    entries = [
        (ledger_tx_id, accounts[code], amount, "usd")
        for ledger_tx_id, reference in created
        for code, amount in postings[reference].items()
        if amount
    ]
    await ledger.insert_entries(session, entries)


@asynccontextmanager
async def peak_memory(stack: Stack) -> AsyncIterator[dict[str, float]]:
    """The peak RSS (MiB, with children: PostgreSQL's backends) of the worker, the emulator and
    PostgreSQL while the block runs, sampled every 0.5 s (empty for a stack we did not start)."""
    peaks: dict[str, float] = {}

    async def sample() -> None:
        while True:
            for role, processes in costs.roles(stack).items():
                if role in PEAK_ROLES:
                    peaks[role] = max(peaks.get(role, 0.0), sum(costs.rss_mib(p) for p in processes))
            await asyncio.sleep(0.5)  # a sampling period, not a wait for a condition

    sampler = asyncio.create_task(sample())
    try:
        yield peaks
    finally:
        sampler.cancel()


def cpu_line(after: dict[str, float], before: dict[str, float], objects: int) -> str:
    """Each process's CPU over the run, and per object checked (the bench's own: the progress query)."""
    spent = sorted(((after[role] - before.get(role, 0.0), role) for role in after), reverse=True)
    parts = [f"{role} {s:.1f} s ({1e6 * s / max(1, objects):.0f} µs)" for s, role in spent if s >= 0.05]
    return "CPU over the run (a checked object's share): " + ", ".join(parts)


def memory_line(peaks: dict[str, float]) -> str:
    return "peak RSS: " + ", ".join(f"{role} {peaks[role]:.0f} MiB" for role in PEAK_ROLES if role in peaks)


@asynccontextmanager
async def phase_times(handle: Any) -> AsyncIterator[dict[str, float]]:
    """When each phase was first seen (s since the block began), from the workflow's `progress`
    query polled every 0.5 s (through continue-as-new: the handle follows the latest run)."""
    seen: dict[str, float] = {}
    began = time.perf_counter()

    async def poll() -> None:
        while True:
            with contextlib.suppress(RPCError, WorkflowQueryFailedError):  # not started yet, or between runs
                progress = await handle.query(ReconciliationWorkflow.progress)
                seen.setdefault(progress.phase, time.perf_counter() - began)
            await asyncio.sleep(0.5)  # a sampling period, not a wait for a condition

    poller = asyncio.create_task(poll())
    try:
        yield seen
    finally:
        poller.cancel()


def phases_line(seen: dict[str, float], elapsed: float) -> str:
    """Each phase's wall time (to the next phase seen; within 0.5 s)."""
    order = sorted(seen.items(), key=lambda kv: kv[1])
    ends = [at for _, at in order[1:]] + [elapsed]
    return "phases: " + ", ".join(f"{name} {end - at:.1f} s" for (name, at), end in zip(order, ends, strict=True))


async def reconcile(stack: Stack, count: int, window_file: str | None = None, workers: int = 1) -> None:
    """Seed `count` payments and reconcile them, with `workers` worker processes polling the task
    queue (a run's pages and slices go to whichever polls). With `window_file`: seed only when the
    file does not exist yet (then write the window to it), else reconcile the window it names again
    (a running stack's `--api`, to compare code changes without seeding each time)."""
    path = Path(window_file) if window_file else None
    if path is not None and path.exists():
        saved = json.loads(path.read_text())
        start, end, count = datetime.fromisoformat(saved["start"]), datetime.fromisoformat(saved["end"]), saved["count"]
    else:
        end = datetime.now(UTC)
        start = end - timedelta(hours=1)
        began = time.perf_counter()
        await seed(stack, count, start, end)
        print(
            f"seeded {count} payments in the emulator and PostgreSQL in {time.perf_counter() - began:.1f} s "
            f"({loadavg()})",
            flush=True,
        )
        if path is not None:
            path.write_text(json.dumps({"start": start.isoformat(), "end": end.isoformat(), "count": count}))
    client = await connect(stack.settings)
    if workers > 1:
        await scale.add_workers(stack, client, workers)
        print(f"{workers} worker processes poll the task queue", flush=True)
    run_id = f"rr_{uuid.uuid4().hex[:24]}"
    job = ReconciliationInput(
        run_id, (start - timedelta(seconds=1)).isoformat(), (end + timedelta(seconds=1)).isoformat()
    )
    cpu_before = costs.cpu_by_role(stack)
    async with peak_memory(stack) as peaks:
        began = time.perf_counter()
        handle = await client.start_workflow(
            ReconciliationWorkflow.run,
            job,
            id=f"reconciliation:{run_id}",
            task_queue=stack.settings.temporal_task_queue,
        )
        async with phase_times(handle) as seen:
            counts = await handle.result()
        elapsed = time.perf_counter() - began
    objects = counts.get("checked", 0) + counts.get("settlement_checked", 0)  # changes, then the three-way match
    print(f"reconciled in {elapsed:.1f} s ({objects / elapsed:.0f} objects/s, {loadavg()}): {counts}")
    print(phases_line(seen, elapsed))
    print(cpu_line(costs.cpu_by_role(stack), cpu_before, objects))
    print(memory_line(peaks))


async def main(args: argparse.Namespace) -> None:
    with running_stack(args.api) as stack:
        await reconcile(stack, args.count, args.window_file, args.workers)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", help="a running stack's API (default: start a throwaway stack)")
    parser.add_argument("--count", type=int, default=100_000, help="payments in the window")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (a throwaway stack)")
    parser.add_argument(
        "--window-file", help="seed once and write the window here; when it exists, reconcile that window again"
    )
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
