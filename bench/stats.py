"""Latency percentiles and throughput of one timed run."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


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
