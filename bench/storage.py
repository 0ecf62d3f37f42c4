"""`python -m bench.storage --count N`: what a payment costs on disk, table by table, and how fast
this machine restores PostgreSQL (docs/capacity.md, "Retention for five years").

Bytes per payment are marginal: the sizes after a first half of the load are subtracted from those
after the second (pg_total_relation_size: heap, TOAST and indexes), so no table's first pages are
counted. The load is devstack/workload.py's mix (captures, partial captures, cancels, declines,
refunds, payouts), so the tables fill as a day's traffic fills them. The restore rates are measured
on pgbench's tables (`pgbench -i -s S`, a database of their own on the same cluster): pg_dump -Fc
then pg_restore -j 2 into an empty database (the rows, then the index builds), and pg_basebackup
of the cluster (the bytes a physical restore copies back before replaying WAL)."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from devstack.postgres import POSTGRES_BIN_PATH
from devstack.throwaway import Stack, running_stack
from devstack.workload import Tally, drive, make_plan, settle
from payments.schema.database import create_engine

SIZES = text(
    "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'alembic_version'"
)
MB = 1024 * 1024
CONCURRENCY = 6  # clients at once


async def sizes(engine: AsyncEngine) -> dict[str, tuple[int, int]]:
    """Table -> (bytes, rows)."""
    async with engine.connect() as conn:
        await conn.execute(text("CHECKPOINT"))
        found: dict[str, int] = {t: n for t, n in (await conn.execute(SIZES)).all()}
        count = 'SELECT count(*) FROM "{}"'  # table names from pg_class
        rows = {t: (await conn.execute(text(count.format(t)))).scalar_one() for t in found}
    return {t: (int(found[t]), int(rows[t])) for t in found}


async def bytes_per_payment(stack: Stack, count: int) -> None:
    engine = create_engine(stack.database_url(), pool_size=2)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        half = count // 2
        await drive(stack, make_plan(1, half), Tally(), CONCURRENCY)
        await settle(sessions, 300)
        first = await sizes(engine)
        await drive(stack, make_plan(2, half), Tally(), CONCURRENCY)
        await settle(sessions, 300)
        second = await sizes(engine)
    finally:
        await engine.dispose()
    print(f"\nMarginal cost of {half} payments (devstack/workload.py's mix), per payment:")
    print("| table | rows / payment | bytes / payment |\n| --- | ---: | ---: |")
    total = 0.0
    for table in sorted(second, key=lambda t: second[t][0] - first[t][0], reverse=True):
        grown, rows = (second[table][0] - first[table][0]) / half, (second[table][1] - first[table][1]) / half
        total += grown
        if rows or grown:
            print(f"| {table} | {rows:.2f} | {grown:,.0f} |")
    print(f"| **all tables** | | **{total:,.0f}** |")


def restore_rates(port: int, scale: int) -> None:
    connect = ["-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]

    def pg(tool: str, *args: str) -> float:
        started = time.monotonic()
        subprocess.run([str(POSTGRES_BIN_PATH / tool), *connect, *args], check=True)
        return time.monotonic() - started

    def database_mb(name: str) -> float:
        query = f"SELECT pg_database_size('{name}')"
        out = subprocess.run(
            [str(POSTGRES_BIN_PATH / "psql"), *connect, "-tAc", query],
            check=True,
            capture_output=True,
            text=True,
        )
        return int(out.stdout) / MB

    with tempfile.TemporaryDirectory(prefix="payments-restore-") as tmp:
        pg("createdb", "restore_probe")
        pg("pgbench", "-i", "-q", "-s", str(scale), "restore_probe")
        size = database_mb("restore_probe")
        dump = pg("pg_dump", "-Fc", "-f", f"{tmp}/probe.dump", "restore_probe")
        pg("createdb", "restore_target")
        restore = pg("pg_restore", "-j", "2", "-d", "restore_target", f"{tmp}/probe.dump")
        base = pg("pg_basebackup", "-D", f"{tmp}/base", "-X", "stream", "-c", "fast")
        cluster = sum(f.stat().st_size for f in Path(tmp, "base").rglob("*") if f.is_file()) / MB
        shutil.rmtree(f"{tmp}/base")
    print(f"\nRestore rates (pgbench -s {scale}: {size:,.0f} MB database; cluster {cluster:,.0f} MB):")
    print(f"pg_dump -Fc {dump:.1f} s ({size / dump:,.1f} MB/s)")
    print(f"pg_restore -j 2 {restore:.1f} s ({size / restore:,.1f} MB/s)")
    print(f"pg_basebackup -X stream {base:.1f} s ({cluster / base:,.1f} MB/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=600, help="payments, in two halves (default: 600)")
    parser.add_argument("--scale", type=int, default=30, help="pgbench scale of the restore probe (15 MB each)")
    args = parser.parse_args()
    with running_stack(None) as stack:
        asyncio.run(bytes_per_payment(stack, args.count))
        restore_rates(stack.settings.postgres_port, args.scale)


if __name__ == "__main__":
    main()
