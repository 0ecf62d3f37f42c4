"""What a drill prints: its figures (counts, seconds) and the checks it ran, each with its violations."""

from __future__ import annotations

from dataclasses import dataclass, field

from devstack.money_checks import Check


@dataclass
class Report:
    name: str
    figures: dict[str, float | int] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    @property
    def violations(self) -> int:
        return sum(len(c.violations) for c in self.checks)

    def table(self, shown: int = 10) -> str:
        lines = [f"drill {self.name}"]
        lines += [f"  {k:<44} {v:.1f}" if isinstance(v, float) else f"  {k:<44} {v}" for k, v in self.figures.items()]
        lines.append(f"{'check':<16} {'violations':>10}  figures")
        for check in self.checks:
            figures = ", ".join(f"{k} {v}" for k, v in check.figures.items())
            lines.append(f"{check.name:<16} {len(check.violations):>10}  {figures}")
        for check in self.checks:
            lines += [f"VIOLATION {check.name}: {v}" for v in check.violations[:shown]]
            if len(check.violations) > shown:
                lines.append(f"VIOLATION {check.name}: ... {len(check.violations) - shown} more")
        lines.append("FAILED: money lost or moved twice" if self.violations else "PASSED")
        return "\n".join(lines)
