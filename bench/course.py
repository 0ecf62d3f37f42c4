"""A long run's course, window by window: the latency of the payments that finished in each
window, the CPU each process spent per payment in it and the API's and worker's memory at its end.
A run's totals hide a stack that slows as it ages; its windows show which process does."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bench import costs
from bench.openloop import Run
from bench.stats import Timings
from devstack.throwaway import Stack

ROLES = ("api", "worker", "temporal", "postgres", "redis", "stripe-emulator")
SHORT = {"stripe-emulator": "emulator", "postgres": "pg"}


@dataclass
class Mark:
    """The run as it stood at one moment."""

    at: float  # seconds into the run
    inits: int  # init latencies recorded by then
    confirms: int
    cpu: dict[str, float]  # cumulative CPU seconds by role
    rss: dict[str, float]  # MiB of the API and the worker


async def follow(stack: Stack, run: Run, every: float, marks: list[Mark]) -> None:
    """Mark the run at once and every `every` s after, printing each window as it closes (a run of
    hours shows its course as it goes), until cancelled."""
    started = time.perf_counter()
    while True:
        processes = costs.roles(stack)
        marks.append(
            Mark(
                time.perf_counter() - started,
                len(run.init.seconds),
                len(run.confirm.seconds),
                {r: sum(costs.cpu_seconds(p) for p in processes.get(r, [])) for r in ROLES},
                {r: sum(costs.rss_mib(p) for p in processes.get(r, [])) for r in ("api", "worker")},
            )
        )
        if len(marks) == 1 and any(marks[0].rss.values()):
            print(HEADER, flush=True)
        elif len(marks) > 1 and any(marks[0].rss.values()):
            print(_window(run, marks[-2], marks[-1]), flush=True)
        await asyncio.sleep(every)


HEADER = (
    "The run's course (latency ms of the payments finished in each window; CPU ms per payment finished"
    " in it; RSS MiB at its end):\n"
    f"  {'s':>6} {'payments':>9} {'init p99':>9} {'conf p99':>9} |"
    + " ".join(f"{SHORT.get(r, r):>8}" for r in ROLES)
    + f" | {'api':>6} {'worker':>7}"
)


def _window(run: Run, before: Mark, after: Mark) -> str:
    done = after.confirms - before.confirms
    init = Timings("init", run.init.seconds[before.inits : after.inits])
    confirm = Timings("confirm", run.confirm.seconds[before.confirms : after.confirms])
    cpu = " ".join(f"{1000 * (after.cpu[r] - before.cpu[r]) / done:8.1f}" if done else f"{'-':>8}" for r in ROLES)
    return (
        f"  {after.at:6.0f} {after.confirms:9d} {_ms(init):>9} {_ms(confirm):>9} |{cpu}"
        f" | {after.rss['api']:6.1f} {after.rss['worker']:7.1f}"
    )


def memory(marks: list[Mark]) -> str:
    """The spread of the API's and the worker's RSS after warm-up (the first fifth of the run)."""
    if len(marks) < 2 or not any(marks[0].rss.values()):
        return "memory: not measured (a stack we did not start, or too short a run)"
    warm = marks[1 + len(marks) // 5 :] or marks[1:]
    lines = []
    for role in ("api", "worker"):
        values = [m.rss[role] for m in warm]
        spread = 100 * (max(values) - min(values)) / min(values) if min(values) else 0.0
        lines.append(f"  {role}: {min(values):.1f}..{max(values):.1f} MiB after warm-up ({spread:.1f} % spread)")
    return "\n".join(lines)


def _ms(timings: Timings) -> str:
    return f"{1000 * timings.percentile(99):.0f}" if timings.seconds else "-"
