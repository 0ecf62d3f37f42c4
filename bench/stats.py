"""Latency percentiles and throughput of one timed run, and the machine's load beside them."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path


def loadavg() -> str:
    """Printed next to every figure: a busy machine's figures are not a quiet one's."""
    return "loadavg " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


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
