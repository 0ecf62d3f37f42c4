"""`make bench-recon`: reconcile a window of N captured payments (default 100k) seeded straight
into the emulator and PostgreSQL, as history is; prints the run's time, its throughput and the
worker's memory (peak RSS before and after: bounded by the page, not the window).

    make bench-recon                                  # a throwaway stack
    make bench-recon RECON_ARGS="--count 20000"
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert

from activities import ledger
from api.auth import mint_token
from bench.stack import Stack, running_stack
from config.temporal import connect
from schema.database import create_engine, session_factory
from schema.messages import ReconciliationInput
from schema.tables import Transaction
from workflows.reconciliation import ReconciliationWorkflow

AMOUNT, FEE_BPS, BATCH = 1000, 290, 5000


def memory_kib(pid: int | None, field: str) -> int | None:
    """VmHWM (peak resident set) or VmRSS of a process, from /proc."""
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


async def seed(stack: Stack, count: int, start: datetime, end: datetime) -> None:
    operator = {"Authorization": f"Bearer {mint_token(stack.settings, 'op_bench', 'operator')}"}
    prefix = f"txb_{uuid.uuid4().hex[:8]}_"
    history = {
        "count": count,
        "amount": AMOUNT,
        "currency": "usd",
        "created_from": int(start.timestamp()) + 1,
        "created_to": int(end.timestamp()) - 1,
        "tx_prefix": prefix,
    }
    async with httpx.AsyncClient(base_url=stack.api, timeout=600) as api:
        user = (await api.post("/users", json={"name": "Bench payer"}, headers=operator)).json()["id"]
        body = {"name": "Bench shop", "currency": "usd", "fee_bps": FEE_BPS}
        merchant = (await api.post("/merchants", json=body, headers=operator)).json()["id"]
        seeding = await api.post(f"{stack.stripe_api_base()}/_emulator/seed/payment_intents", json=history)
        seeded = seeding.json()["ids"]
    engine = create_engine(stack.database_url())
    step = (end - start) / count
    try:
        async with engine.begin() as conn:
            for first in range(0, count, BATCH):
                rows = [
                    {
                        "id": f"{prefix}{i}",
                        "user_id": user,
                        "merchant_id": merchant,
                        "amount": AMOUNT,
                        "amount_captured": AMOUNT,
                        "currency": "usd",
                        "status": "confirmed",
                        "idempotency_key": f"{prefix}{i}",
                        "request_fingerprint": "bench",
                        "card_token": b"",
                        "card_token_key_id": "bench",
                        "stripe_payment_intent_id": seeded[i],
                        "workflow_id": f"payment:{user}:{prefix}{i}",
                        "created_at": start + step * i,
                        "updated_at": start + step * i,
                    }
                    for i in range(first, min(first + BATCH, count))
                ]
                await conn.execute(insert(Transaction), rows)
        async with session_factory(engine).begin() as session:  # the captures, posted as one batch
            fees = count * ledger.platform_fee(AMOUNT, FEE_BPS)
            await ledger.post(session, f"bench:{prefix}", "usd", ledger.capture_entries(merchant, count * AMOUNT, fees))
    finally:
        await engine.dispose()


async def main(args: argparse.Namespace) -> None:
    with running_stack(args.api) as stack:
        end = datetime.now(UTC)
        start = end - timedelta(hours=1)
        began = time.perf_counter()
        await seed(stack, args.count, start, end)
        print(f"seeded {args.count} payments in the emulator and PostgreSQL in {time.perf_counter() - began:.1f} s")
        worker = stack.worker_pid()
        peak_before = memory_kib(worker, "VmHWM")
        client = await connect(stack.settings)
        run_id = f"rr_{uuid.uuid4().hex[:24]}"
        job = ReconciliationInput(
            run_id, (start - timedelta(seconds=1)).isoformat(), (end + timedelta(seconds=1)).isoformat()
        )
        began = time.perf_counter()
        counts = await client.execute_workflow(
            ReconciliationWorkflow.run,
            job,
            id=f"reconciliation:{run_id}",
            task_queue=stack.settings.temporal_task_queue,
        )
        elapsed = time.perf_counter() - began
        print(f"reconciled in {elapsed:.1f} s ({counts.get('checked', 0) / elapsed:.0f} objects/s): {counts}")
        if worker is not None:
            print(
                f"worker memory: peak RSS {peak_before} KiB before the run, {memory_kib(worker, 'VmHWM')} KiB after; "
                f"RSS now {memory_kib(worker, 'VmRSS')} KiB"
            )


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", help="a running stack's API (default: start a throwaway stack)")
    parser.add_argument("--count", type=int, default=100_000, help="payments in the window")
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
