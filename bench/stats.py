"""Latency percentiles and throughput of one timed run, and the machine's load beside them."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path


def loadavg() -> str:
    """Printed next to every figure: a busy machine's figures are not a quiet one's."""
    return "loadavg " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine_speed() -> str:
    """How fast one core runs a fixed Python workload (a payment-shaped document to and from JSON,
    best of five): CPU ms per payment are a property of the machine as much as of the code, and
    this figure is what tells two machines' runs apart."""
    document = {"id": "tx_" + "0" * 32, "amount": 1999, "currency": "usd", "status": "authorized", "n": list(range(20))}
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for _ in range(20_000):
            json.loads(json.dumps(document))
        best = min(best, time.process_time() - started)
    return f"machine speed: the reference workload takes {1000 * best:.0f} ms of one core (lower is faster)"


@dataclass
class Timings:
    name: str
    seconds: list[float] = field(default_factory=list)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    def line(self) -> str:
        if not self.seconds:
            return f"{self.name}: no call succeeded"
        ms = [1000 * self.percentile(p) for p in (50, 95, 99)]
        mean = 1000 * statistics.fmean(self.seconds)
        return f"{self.name:<22} p50 {ms[0]:7.1f} ms   p95 {ms[1]:7.1f} ms   p99 {ms[2]:7.1f} ms   mean {mean:7.1f} ms"
