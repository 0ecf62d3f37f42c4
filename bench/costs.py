"""What one payment costs: CPU seconds of each process of the stack (from /proc, a process with its
children, reaped ones included) and the round trips it makes (HTTP requests to the API by route,
the worker's Temporal requests, PostgreSQL statements and transactions, Redis commands, Stripe
calls), read before and after a run and divided by the payments it made."""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, fields

import httpx
import psutil
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import ceiling
from devstack.throwaway import Stack
from payments.api.auth import mint_token

LOAD_GENERATOR = "load generator"
STRIPE_EMULATOR = "stripe-emulator"
# Not our servers' work: Stripe's (its stand-in here) and the customers' and merchants' (the bench's).
NOT_OURS = (STRIPE_EMULATOR, LOAD_GENERATOR)
_SAMPLE = re.compile(r"^(\w+)\{([^}]*)\} ([0-9.e+-]+)$")


def roles(stack: Stack) -> dict[str, list[psutil.Process]]:
    """The stack's processes by role (api, worker, temporal, postgres, redis, stripe-emulator; the
    workers we added too) and this load generator; only the latter for a stack we did not start."""
    found: dict[str, list[psutil.Process]] = {LOAD_GENERATOR: [psutil.Process(os.getpid())]}
    if stack.dev_pid is None:
        return found
    added = [psutil.Process(p.pid) for p in stack.replacements if p.poll() is None]
    for child in psutil.Process(stack.dev_pid).children() + added:
        try:
            argv, name = child.cmdline(), child.name()
        except psutil.NoSuchProcess:
            continue
        if skeleton_role := ceiling.role_of(argv):
            role = skeleton_role
        elif "payments" in argv:
            role = argv[argv.index("payments") + 1]  # python -m payments api --workers 2
        elif "stripe_emulator" in argv:
            role = STRIPE_EMULATOR
        elif name in ("postgres", "redis-server", "temporal"):
            role = name.removesuffix("-server")
        else:
            continue
        found.setdefault(role, []).append(child)
    return found


def cpu_seconds(process: psutil.Process, children: bool = True) -> float:
    """User + system CPU of a process, and of its live descendants and the children it has reaped."""
    try:
        own = process.cpu_times()
        total = own.user + own.system
        if not children:  # the load generator: its child is the whole stack
            return total
        total += own.children_user + own.children_system
        for child in process.children(recursive=True):
            try:
                times = child.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                continue
        return total
    except psutil.NoSuchProcess:
        return 0.0


def cpu_by_role(stack: Stack) -> dict[str, float]:
    """CPU seconds so far of each role's processes (with their children; this load generator without)."""
    return {role: sum(cpu_seconds(p, role != LOAD_GENERATOR) for p in ps) for role, ps in roles(stack).items()}


def rss_mib(process: psutil.Process) -> float:
    """Resident memory of a process and its descendants (uvicorn workers, PostgreSQL backends)."""
    try:
        total = process.memory_info().rss
        for child in process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total / 2**20
    except psutil.NoSuchProcess:
        return 0.0


def _samples(exposition: str, metric: str, label: str) -> Counter[str]:
    """Sum a Prometheus counter's samples by one label's value."""
    sums: Counter[str] = Counter()
    for line in exposition.splitlines():
        match = _SAMPLE.match(line)
        if match and match[1] == metric:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match[2]))
            sums[labels.get(label, "")] += int(float(match[3]))
    return sums


@dataclass
class Counts:
    """Monotonic counters of one moment; `after - before` is a run's share."""

    cpu: dict[str, float]
    http: Counter[str]
    temporal: Counter[str]
    postgres: Counter[str]
    redis: Counter[str]
    stripe: Counter[str]
    parties: Counter[str]  # the API's user and merchant lookups: hit, miss
    own_moves: Counter[str]  # the API's webhooks of our own captures and voids, by what it found

    def __sub__(self, before: Counts) -> Counts:
        return Counts(
            {role: seconds - before.cpu.get(role, 0.0) for role, seconds in self.cpu.items()},
            *(getattr(self, name) - getattr(before, name) for name in _COUNTERS),
        )

    def __add__(self, other: Counts) -> Counts:
        """Two runs' shares together (the rounds of one comparison)."""
        return Counts(
            {role: self.cpu.get(role, 0.0) + other.cpu.get(role, 0.0) for role in self.cpu.keys() | other.cpu.keys()},
            *(getattr(self, name) + getattr(other, name) for name in _COUNTERS),
        )


_COUNTERS = tuple(field.name for field in fields(Counts) if field.name != "cpu")


class Meter:
    """Reads the counters of a stack we started (a stack given by `--api` has CPU of this
    process and HTTP requests only)."""

    def __init__(self, stack: Stack, engine: AsyncEngine, redis: Redis, http: httpx.AsyncClient) -> None:
        self._stack, self._engine, self._redis, self._http = stack, engine, redis, http
        self._statements = False

    async def start(self) -> None:
        """pg_stat_statements when the server preloads it (the dev stack's PostgreSQL does)."""
        try:
            async with self._engine.begin() as db:
                await db.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
                await db.execute(text("SELECT 1 FROM pg_stat_statements LIMIT 1"))
            self._statements = True
        except Exception:  # not preloaded: transactions only
            self._statements = False

    async def read(self) -> Counts:
        return Counts(
            cpu_by_role(self._stack),
            await self._metrics(self._stack.api, "payments_http_request_duration_seconds_count", "route"),
            await self._temporal(),
            await self._postgres(),
            await self._redis_commands(),
            await self._stripe(),
            await self._metrics(self._stack.api, "payments_party_cache_lookups_total", "result"),
            await self._metrics(self._stack.api, "payments_stripe_own_moves_total", "found"),
        )

    async def _metrics(self, base: str, metric: str, label: str) -> Counter[str]:
        try:
            operator = {"Authorization": f"Bearer {mint_token(self._stack.settings, 'op_bench', 'operator')}"}
            return _samples((await self._http.get(f"{base}/metrics", headers=operator)).text, metric, label)
        except httpx.HTTPError:
            return Counter()

    async def _temporal(self) -> Counter[str]:
        if self._stack.dev_pid is None:
            return Counter()
        base = f"http://127.0.0.1:{self._stack.settings.worker_metrics_port}"
        return await self._metrics(base, "temporal_request_total", "operation") + await self._metrics(
            base, "temporal_long_request_total", "operation"
        )

    async def _postgres(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        try:
            async with self._engine.connect() as db:
                query = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
                row = (await db.execute(text(query))).one()
                counts["transactions"] = int(row[0])
                if self._statements:
                    calls = await db.execute(
                        text(
                            "SELECT query, calls FROM pg_stat_statements"
                            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                        )
                    )
                    for query, n in calls:
                        counts[" ".join(query.split())[:120]] += int(n)
        except Exception:  # a stack without our PostgreSQL access: no figures
            return Counter()
        return counts

    async def _redis_commands(self) -> Counter[str]:
        try:
            stats = await self._redis.info("commandstats")
        except Exception:
            return Counter()
        return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})

    async def _stripe(self) -> Counter[str]:
        if self._stack.dev_pid is None:
            return Counter()
        try:
            counters = (await self._http.get(f"{self._stack.stripe_api_base()}/_emulator/counters")).json()
        except httpx.HTTPError:
            return Counter()
        return Counter({op: int(sum(by_id.values())) for op, by_id in counters.items()})


STATEMENT_KEYS = ("transactions",)


def report(cost: Counts, payments: int, top: int = 12) -> str:
    """CPU ms per payment by process, then round trips per payment of each kind."""
    lines = [f"CPU per payment over {payments} payments started (ms; process with its children):"]
    total = 0.0
    for role, seconds in sorted(cost.cpu.items(), key=lambda kv: -kv[1]):
        ms = 1000 * seconds / payments
        total += ms
        lines.append(f"  {role:<18} {ms:7.1f}")
    lines.append(f"  {'total':<18} {total:7.1f}")
    lines.append("Round trips per payment:")

    def kind(name: str, counts: Counter[str]) -> None:
        shown = [(k, v / payments) for k, v in counts.most_common() if v > 0]
        if not shown:
            lines.append(f"  {name:<18} (not measured)")
            return
        lines.append(f"  {name:<18} {sum(v for _, v in shown):7.2f}")
        lines.extend(f"      {v:6.2f}  {k}" for k, v in shown[:top])

    kind("HTTP (API)", cost.http)
    kind("Temporal (worker)", cost.temporal)
    statements = Counter({k: v for k, v in cost.postgres.items() if k not in STATEMENT_KEYS})
    lines.append(f"  {'PG transactions':<18} {cost.postgres['transactions'] / payments:7.2f}")
    kind("PG statements", statements)
    kind("Redis commands", cost.redis)
    kind("Stripe calls", cost.stripe)
    lookups = cost.parties["hit"] + cost.parties["miss"]
    ratio = f"{100 * cost.parties['hit'] / lookups:.1f} %" if lookups else "n/a"
    lines.append(f"User and merchant lookups (Redis cache): {lookups} ({ratio} hits)")
    found = ", ".join(f"{k} {v}" for k, v in sorted(cost.own_moves.items())) or "none"
    lines.append(f"Our own moves' webhooks, by what the API found (each but recorded cost a describe): {found}")
    return "\n".join(lines)


def _rows(ours: Counts, ours_payments: int, skeleton: Counts, skeleton_payments: int) -> list[tuple[str, float, float]]:
    """(our process, its CPU ms per payment, its counterpart's in the skeleton) for each of ours."""

    def ms(cost: Counts, role: str, payments: int) -> float:
        return 1000 * cost.cpu.get(role, 0.0) / max(1, payments)

    pairs = [
        ("temporal", "temporal"),
        ("api", ceiling.ROLE_PREFIX + "api"),
        ("worker", ceiling.ROLE_PREFIX + "worker"),
        (LOAD_GENERATOR, LOAD_GENERATOR),
    ]
    shown = {ours_role for ours_role, _ in pairs}
    pairs += [(role, "") for role in sorted(ours.cpu) if role not in shown and not ceiling.is_skeleton(role)]
    return [
        (role, ms(ours, role, ours_payments), ms(skeleton, bare, skeleton_payments) if bare else 0.0)
        for role, bare in pairs
    ]


def _totals(rows: list[tuple[str, float, float]]) -> dict[str, tuple[float, float]]:
    """The whole stack's CPU per payment, ours and the skeleton's, and our servers' alone."""
    servers = [row for row in rows if row[0] not in NOT_OURS]
    return {
        name: (sum(r[1] for r in part), sum(r[2] for r in part))
        for name, part in (("total", rows), ("our servers", servers))
    }


def ratios(ours: Counts, ours_payments: int, skeleton: Counts, skeleton_payments: int) -> dict[str, float]:
    """Ours as a multiple of the skeleton: "total" (the whole stack) and "our servers"."""
    totals = _totals(_rows(ours, ours_payments, skeleton, skeleton_payments))
    return {name: mine / bare if bare else float("nan") for name, (mine, bare) in totals.items()}


def shares(
    ours: Counts,
    ours_payments: int,
    skeleton: Counts,
    skeleton_payments: int,
    title: str = "CPU per payment, ours beside the skeleton's in the same run (ms):",
) -> str:
    """Our CPU per payment beside the skeleton's (bench/ceiling.py), process by process, measured in
    the same run, and ours as a multiple of it. The skeleton's processes are Temporal, its own API
    and worker, and the load generator: what our idle processes spend meanwhile is not its cost."""
    rows = _rows(ours, ours_payments, skeleton, skeleton_payments)
    lines = [title]
    for role, mine, bare in rows:
        ratio = f"{mine / bare:6.2f}x" if bare else ""
        lines.append(f"  {role:<18} {mine:7.1f} {bare:9.1f}  {ratio}")
    notes = {"total": "(target: 1.3x at most)", "our servers": f"(without {' and '.join(NOT_OURS)})"}
    for name, (total_ours, total_skeleton) in _totals(rows).items():
        times = total_ours / total_skeleton if total_skeleton else float("nan")
        lines.append(f"  {name:<18} {total_ours:7.1f} {total_skeleton:9.1f}  {times:6.2f}x {notes[name]}")
    return "\n".join(lines)
