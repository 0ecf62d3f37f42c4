"""Fault injection for chaos tests: on requests matching a method and path pattern, add latency,
fail before doing anything (500 or 429), or do the work and then never answer (the client times
out although the change was committed). By probability, or for the next N matching calls."""

from __future__ import annotations

import random
import re
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Action = Literal["latency", "error", "rate_limit", "timeout_after_commit"]
ACTIONS: tuple[str, ...] = ("latency", "error", "rate_limit", "timeout_after_commit")


@dataclass
class Fault:
    action: Action
    path: str  # a regular expression matched against the whole path, e.g. "/v1/payment_intents/[^/]+/capture"
    method: str = "POST"
    latency_ms: int = 0
    hang_seconds: float = 30.0
    probability: float = 1.0
    times: int | None = None  # None: until removed
    id: str = field(default_factory=lambda: f"fault_{secrets.token_hex(6)}")
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and re.fullmatch(self.path, path) is not None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Faults:
    def __init__(self, seed: int | None = None) -> None:
        self._rules: list[Fault] = []
        self._random = random.Random(seed)  # noqa: S311 (chaos, not cryptography)

    def add(self, fault: Fault) -> Fault:
        if fault.action not in ACTIONS:
            raise ValueError(f"unknown fault action {fault.action!r}; one of {', '.join(ACTIONS)}")
        re.compile(fault.path)
        self._rules.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The fault to apply to this request, if any (consuming one of its `times`)."""
        for fault in self._rules:
            if not fault.matches(method, path) or self._random.random() >= fault.probability:
                continue
            fault.hits += 1
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._rules.remove(fault)
            return fault
        return None

    def give_back(self, fault: Fault) -> None:
        """Undo `take` for a request that did nothing (refused while its idempotency key was in
        flight), so a one-off fault still meets a request that does the work."""
        fault.hits -= 1
        if fault.times is not None:
            fault.times += 1
            if fault not in self._rules:
                self._rules.append(fault)

    def all(self) -> list[Fault]:
        return list(self._rules)

    def remove(self, fault_id: str) -> bool:
        before = len(self._rules)
        self._rules = [f for f in self._rules if f.id != fault_id]
        return len(self._rules) < before

    def clear(self) -> None:
        self._rules.clear()
