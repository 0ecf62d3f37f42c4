"""Open-loop load: payments arrive by a Poisson process at a set rate whatever the system is doing,
and each payment's latency counts from its scheduled start, so a backlog shows up as latency (a
closed loop waits for the system before sending more and so hides its queueing). A step run
raises the rate until the p99 of either call passes the limit or a payment fails: the knee."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.stats import Timings

P99_LIMIT = 0.5  # seconds: the seed's "payment < 500 ms"


@dataclass
class Run:
    """One open-loop run at `rate` payments/s: each payment is an init then a confirm."""

    name: str
    rate: float
    init: Timings
    confirm: Timings
    wall: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)

    @classmethod
    def named(cls, name: str, rate: float) -> Run:
        return cls(name, rate, Timings(f"{name} init"), Timings(f"{name} confirm"))

    @property
    def done(self) -> int:
        return len(self.confirm.seconds)

    @property
    def failures(self) -> int:
        return sum(self.errors.values())

    @property
    def throughput(self) -> float:
        return self.done / self.wall if self.wall else 0.0

    def within(self, limit: float = P99_LIMIT) -> bool:
        """No failure, and the p99 of both calls under `limit`."""
        return (
            self.failures == 0
            and self.done > 0
            and self.init.percentile(99) < limit
            and self.confirm.percentile(99) < limit
        )

    def fail(self, what: str) -> None:
        self.errors[what] += 1
        if self.failures <= 3:
            print(f"  {self.name}: a payment failed: {what}", flush=True)


# A payment: given the run and its scheduled start (time.perf_counter()), init then confirm,
# appending each call's latency (init from the scheduled start) to run.init / run.confirm.
Payment = Callable[[Run, float], Awaitable[None]]


async def open_loop(
    name: str, payment: Payment, rate: float, duration: float, seed: int = 1, run: Run | None = None
) -> Run:
    """Start payments at Poisson arrivals for `duration` s, then wait for the last to finish
    (into `run` if given, for a watcher that follows it as it goes)."""
    run = run or Run.named(name, rate)
    arrivals = random.Random(seed)  # noqa: S311 - reproducible arrivals, not a secret
    started = time.perf_counter()
    in_flight: set[asyncio.Task[None]] = set()

    async def one(scheduled: float) -> None:
        try:
            await payment(run, scheduled)
        except Exception as exc:  # counted and reported; the run goes on
            run.fail(_short(exc))

    offset = arrivals.expovariate(rate)
    while offset < duration:
        delay = started + offset - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # the next arrival's time, not a wait for the system
        task = asyncio.create_task(one(started + offset))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        offset += arrivals.expovariate(rate)
    await asyncio.gather(*list(in_flight))
    run.wall = time.perf_counter() - started
    return run


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text[:160]


@dataclass
class Steps:
    """A step run's rates (start, start*factor, ... up to `top`), each held `seconds`; then
    `refinements` steps between the last rate that held and the first that did not, each at their
    geometric middle. The ladder alone measures a knee to one factor (1.3: a knee of 77 % of
    another's reads the same as one of 99 %); two refinements measure it to the fourth root."""

    start: float
    factor: float
    seconds: float
    top: float
    refinements: int = 2

    def rates(self) -> list[float]:
        rates, rate = [], self.start
        while rate <= self.top:
            rates.append(round(rate, 1))
            rate *= self.factor
        return rates


def between(held: float, missed: float) -> float:
    """The rate a refinement step tries: the geometric middle of the last that held and the first
    that did not, to 0.1/s."""
    return round((held * missed) ** 0.5, 1)


async def step(name: str, payment: Payment, steps: Steps) -> tuple[float, list[Run]]:
    """Raise the rate until a step misses the p99 limit or fails, then refine between the last
    rate that held and that one; the knee is the highest rate that held (0 if the first did not)."""
    knee, runs = 0.0, []

    async def held(rate: float) -> bool:
        run = await open_loop(f"{name} @{rate:g}/s", payment, rate, steps.seconds, seed=int(rate * 10))
        runs.append(run)
        print(row(run), flush=True)
        return run.within()

    missed = None
    for rate in steps.rates():
        if not await held(rate):
            missed = rate
            break
        knee = rate
    if not knee or missed is None:  # the first step missed, or none did: nothing to refine between
        return knee, runs
    for _ in range(steps.refinements):
        rate = between(knee, missed)
        if rate in (knee, missed):
            break
        if await held(rate):
            knee = rate
        else:
            missed = rate
    return knee, runs


HEADER = (
    f"{'run':<28} {'rate/s':>7} {'done/s':>7} {'fail':>5}"
    f" {'init p50':>9} {'p99':>7} {'confirm p50':>12} {'p99':>7}  (ms)"
)


def row(run: Run) -> str:
    def ms(timings: Timings, p: float) -> str:
        return f"{1000 * timings.percentile(p):.0f}" if timings.seconds else "-"

    return (
        f"{run.name:<28} {run.rate:>7.1f} {run.throughput:>7.1f} {run.failures:>5}"
        f" {ms(run.init, 50):>9} {ms(run.init, 99):>7} {ms(run.confirm, 50):>12} {ms(run.confirm, 99):>7}"
    )
