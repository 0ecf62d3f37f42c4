"""The fault schedule of a chaos run, drawn from its seed, and the task that applies it: Stripe 5xx,
timeouts after commit and calls slower than our timeout (the emulator's control API), the worker
SIGKILLed every few seconds and replaced, Redis frozen for a while, one PostgreSQL restart, one API
restart, one reconciliation run, and a few confirms lost after Stripe captured (chaos/lost_confirm.py)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import psutil
import stripe
from temporalio.service import RPCError

from chaos.lost_confirm import restart_temporal_and_api, stall
from devstack.ports import wait_listening
from devstack.throwaway import Stack
from devstack.workload import Tally
from payments.config.temporal import connect
from payments.workers.schedules import RECONCILIATION_SCHEDULE
from payments.workflows.reconciliation import ReconciliationWorkflow

STRIPE_ERRORS = 0.10
STRIPE_TIMEOUTS = 0.05
STRIPE_SLOW = 0.05  # answered, but after our timeout: the retry finds the first call in flight (409)
STRIPE_HANG_SECONDS = 3.0  # longer than the stack's Stripe client timeout (runner.CHAOS_SETTINGS)
REPLACED_WITHIN = 2.0  # seconds for `make dev` to restart a killed worker before we start one
# Seconds for a triggered Schedule's run to show in visibility: more than 60 beside two `yes` (the
# trigger came amid a worker kill and an API restart), as long as a new worker may take.
RECONCILIATION_STARTS_WITHIN = 180.0
TEMPORAL_BACK_WITHIN = 120  # seconds (one attempt a second) a restarted Temporal has to answer again
WORKER_UP_WITHIN = 120.0  # seconds for a new worker to start; longer is a violation of its own
# A confirm lost after Stripe captured, once per this many payments, at least once and at most 3
# times a run (issue 25: "several times in a 1,000-payment run"): each pauses the other process
# faults for about 30 s.
PAYMENTS_PER_LOST_CONFIRM = 300
CAPTURE = r"/v1/payment_intents/[^/]+/capture"
CAPTURE_HELD_SECONDS = 30.0  # the held capture's answer: longer than it takes us to freeze the worker
CAPTURE_WITHIN = 20.0  # seconds for the workload's next capture to reach Stripe; else the fault is skipped


@dataclass(frozen=True)
class FaultSchedule:
    kill_gaps: tuple[float, ...]  # seconds between worker kills, used in turn
    redis_down_at: float  # when, as the share of payments started
    redis_down_for: float  # seconds
    postgres_restart_at: float
    api_restart_at: float
    reconcile_at: float  # the reconciliation Schedule triggered mid-run, as every 6 h in production
    lost_confirms_at: tuple[float, ...]  # the next capture's confirm lost (chaos/lost_confirm.py)


def make_schedule(seed: int, count: int) -> FaultSchedule:
    rng = random.Random(f"{seed}:faults")  # noqa: S311 (a replayable run, not cryptography)
    lost_confirms = min(3, max(1, count // PAYMENTS_PER_LOST_CONFIRM))
    return FaultSchedule(
        kill_gaps=tuple(round(rng.uniform(5.0, 10.0), 1) for _ in range(20)),  # issue 10: every 5-10 s
        redis_down_at=round(rng.uniform(0.15, 0.35), 2),
        redis_down_for=round(rng.uniform(3.0, 8.0), 1),
        postgres_restart_at=round(rng.uniform(0.4, 0.6), 2),
        api_restart_at=round(rng.uniform(0.65, 0.85), 2),
        reconcile_at=round(rng.uniform(0.3, 0.7), 2),
        # Drawn last: the earlier draws stay the same.
        lost_confirms_at=tuple(sorted(round(rng.uniform(0.1, 0.7), 2) for _ in range(lost_confirms))),
    )


class FaultInjector:
    def __init__(self, stack: Stack, schedule: FaultSchedule, emulator: httpx.AsyncClient, tally: Tally) -> None:
        self._stack = stack
        self._schedule = schedule
        self._emulator = emulator  # base URL: the emulator's control API (/_emulator)
        self._tally = tally
        # Held by whatever kills or freezes the worker or the API, so no two of them interleave.
        self._processes = asyncio.Lock()
        self._stripe_faults: dict[str, str] = {}  # fault id -> what we count it as
        self.counts: Counter[str] = Counter()
        self._started = time.monotonic()

    def _log(self, what: str) -> None:
        """A timeline of the faults, printed as they happen."""
        print(f"  {time.monotonic() - self._started:6.1f} s  {what}", flush=True)

    async def start_stripe_faults(self) -> None:
        # Faults match in order, so the second rate is of the calls the first one let through.
        for name, fault in (
            ("stripe 5xx", {"action": "error", "probability": STRIPE_ERRORS}),
            (
                "stripe timeouts after commit",
                {
                    "action": "timeout_after_commit",
                    "probability": STRIPE_TIMEOUTS / (1 - STRIPE_ERRORS),
                    "hang_seconds": STRIPE_HANG_SECONDS,
                },
            ),
            (
                "stripe calls slower than our timeout",
                {
                    "action": "latency",
                    "probability": STRIPE_SLOW / (1 - STRIPE_ERRORS - STRIPE_TIMEOUTS),
                    "latency_ms": int(STRIPE_HANG_SECONDS * 1000),
                },
            ),
        ):
            response = await self._emulator.post("/faults", json={"path": "/v1/.*", **fault})
            response.raise_for_status()
            self._stripe_faults[response.json()["id"]] = name

    async def stop_stripe_faults(self) -> None:
        faults = (await self._emulator.get("/faults")).json()["data"]
        for fault in faults:
            if fault["id"] in self._stripe_faults:
                self.counts[self._stripe_faults[fault["id"]]] = fault["hits"]
                await self._emulator.delete(f"/faults/{fault['id']}")

    async def run(self, progress: Callable[[], float], done: asyncio.Event) -> None:
        """Kill the worker every few seconds, and fire each one-off fault when its share of the
        workload has started, until `done`."""
        s = self._schedule
        one_offs: list[tuple[float, Callable[[], Coroutine[Any, Any, None]]]] = [
            (s.redis_down_at, self.redis_down),
            (s.postgres_restart_at, self.restart_postgres),
            (s.api_restart_at, self.restart_api),
            (s.reconcile_at, self.reconcile),
            *((at, self.lose_a_confirm) for at in s.lost_confirms_at),
        ]
        one_offs.sort(key=lambda item: item[0])
        gaps = itertools.cycle(s.kill_gaps)
        next_kill = time.monotonic() + next(gaps)
        async with asyncio.TaskGroup() as fired:  # the Redis outage lasts a while, beside the kills
            while not done.is_set():
                if time.monotonic() >= next_kill and not self._processes.locked():
                    async with self._processes:
                        await self.kill_worker()
                    next_kill = time.monotonic() + next(gaps)
                while one_offs and progress() >= one_offs[0][0]:
                    fired.create_task(one_offs.pop(0)[1]())
                try:
                    await asyncio.wait_for(done.wait(), 0.2)
                except TimeoutError:
                    pass

    async def kill_worker(self) -> None:
        """SIGKILL the worker and wait until its successor is up (its metrics port open), so the
        next gap counts from a serving worker: on a busy machine a new worker's start-up alone
        can outlast a gap, and one killed before it ever served tests nothing but the start-up."""
        ours = len(self._stack.replacements)
        killed_at = time.monotonic()
        pid = await asyncio.to_thread(self._stack.replace, "worker", signal.SIGKILL, REPLACED_WITHIN)
        self.counts["worker SIGKILLs"] += 1
        restarted_by = "us" if len(self._stack.replacements) > ours else "make dev"
        if restarted_by == "us":
            self.counts["workers we restarted"] += 1
        port = self._stack.settings.worker_metrics_port
        await asyncio.to_thread(wait_listening, port, f"the worker (pid {pid})", WORKER_UP_WITHIN)
        up_after = time.monotonic() - killed_at
        self._log(f"worker SIGKILLed, replaced by pid {pid} (started by {restarted_by}), up after {up_after:.1f} s")

    async def redis_down(self) -> None:
        """Frozen (SIGSTOP), so clients hang and time out as on a dead host; then SIGCONT."""
        redis = self._stack.process("redis-server")
        if redis is None:
            raise RuntimeError("the stack has no Redis process")
        redis.suspend()
        self.counts["redis outages"] += 1
        self._log(f"Redis down for {self._schedule.redis_down_for} s")
        try:
            await asyncio.sleep(self._schedule.redis_down_for)  # the outage itself
        finally:
            redis.resume()
            self._log("Redis back")

    async def restart_postgres(self) -> None:
        """SIGKILL a server process: PostgreSQL drops every connection, recovers and comes back."""
        postmaster = self._stack.process("postgres")
        if postmaster is None:
            raise RuntimeError("the stack has no PostgreSQL process")
        checkpointer = next(p for p in postmaster.children() if "checkpointer" in " ".join(p.cmdline()))
        checkpointer.send_signal(signal.SIGKILL)
        self.counts["postgres restarts"] += 1
        self._log("PostgreSQL crash-restarted (checkpointer SIGKILLed)")

    async def reconcile(self) -> None:
        """Trigger the reconciliation Schedule amid the traffic and wait for its run: payments in
        flight must not read as discrepancies (the events check counts any it publishes)."""
        client = await connect(self._stack.settings)
        since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        await client.get_schedule_handle(RECONCILIATION_SCHEDULE).trigger()
        self._log("reconciliation triggered")
        query = f'WorkflowType="{ReconciliationWorkflow.__name__}" AND StartTime >= "{since}"'
        deadline = time.monotonic() + RECONCILIATION_STARTS_WITHIN
        while not (started := [run async for run in client.list_workflows(query)]):
            if time.monotonic() > deadline:
                raise RuntimeError("the triggered reconciliation never started")
            await asyncio.sleep(0.2)  # polling visibility with a deadline
        handle = client.get_workflow_handle(started[0].id, run_id=started[0].run_id)
        for attempt in itertools.count(1):
            try:
                counts = await handle.result()
                break
            except RPCError:  # Temporal restarted under the wait (a lost confirm's fault): ask again
                if attempt > TEMPORAL_BACK_WITHIN:
                    raise
                await asyncio.sleep(1.0)  # a restart takes seconds; there is no event to wait on
        self.counts["reconciliation runs"] += 1
        self._log(f"reconciliation done: {counts}")

    async def restart_api(self) -> None:
        async with self._processes:
            await asyncio.to_thread(self._stack.replace, "api", signal.SIGTERM)
        self.counts["api restarts"] += 1
        self._log("API restarted")

    async def lose_a_confirm(self) -> None:
        """Hold the answer of the workload's next capture; once Stripe has committed it, freeze the
        worker, restart Temporal on its database and kill the API (chaos/lost_confirm.py). That
        payment's client walks away when its connection dies; then the worker is replaced."""
        fault = {"action": "timeout_after_commit", "path": CAPTURE, "hang_seconds": CAPTURE_HELD_SECONDS, "times": 1}
        async with self._processes:
            response = await self._emulator.post("/faults", json=fault)
            response.raise_for_status()
            held = await self._held(response.json()["id"])
            if held is None:
                await self._emulator.delete(f"/faults/{response.json()['id']}")
                self._log("lost confirm skipped: no capture reached Stripe")
                return
            seen_at = time.monotonic()
            frozen = await asyncio.to_thread(stall, self._stack)
            self._log(f"capture of {held} committed at Stripe; worker frozen {time.monotonic() - seen_at:.2f} s later")
            await asyncio.to_thread(self._walk_away_from, held)
            await asyncio.to_thread(restart_temporal_and_api, self._stack)
            self._log("Temporal restarted on its database, the API killed and restarted: the confirm is lost")
            await self.kill_worker()  # the frozen worker, replaced
            for worker in frozen:  # any other that stood frozen beside it
                with contextlib.suppress(psutil.NoSuchProcess):
                    worker.kill()
        self.counts["confirms lost after capture"] += 1

    async def _held(self, fault_id: str) -> str | None:
        """The PaymentIntent whose capture the fault held, once Stripe has committed it."""
        deadline = time.monotonic() + CAPTURE_WITHIN
        while time.monotonic() < deadline:
            paths = (await self._emulator.get("/counters")).json().get(f"held.{fault_id}", {})
            if paths:
                return str(next(iter(paths)).split("/")[3])  # /v1/payment_intents/{id}/capture
            await asyncio.sleep(0.05)  # polling a condition with a deadline
        return None

    def _walk_away_from(self, payment_intent_id: str) -> None:
        """The payment's client gives up when its connection dies, as the issue's did: no retry."""
        client = stripe.StripeClient("sk_test_emulator", base_addresses={"api": self._stack.stripe_api_base()})
        intent = client.v1.payment_intents.retrieve(payment_intent_id)
        self._tally.walked_away.add(intent.metadata.to_dict()["tx_id"])
