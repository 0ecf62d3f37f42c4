"""The stack a benchmark drives: a running one (`--api`), or a fresh `payments dev` in a temp dir on
free ports, so it neither collides with a developer's `make dev` nor keeps its data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from config.settings import Settings
from workers.devstack.ports import free_port, wait_ready
from workers.devstack.postgres import PostgresServer

READY_TIMEOUT = 120.0


@dataclass(frozen=True)
class Stack:
    api: str
    settings: Settings  # what the bench needs to reach the same Temporal, PostgreSQL and Stripe
    dev_pid: int | None = None  # the `payments dev` process whose children run the stack

    def database_url(self) -> str:
        local = PostgresServer(Path(self.settings.devstack_dir) / "postgres", self.settings.postgres_port)
        return self.settings.database_url or local.url

    def stripe_api_base(self) -> str:
        return self.settings.stripe_api_base or f"http://127.0.0.1:{self.settings.stripe_emulator_port}"

    def worker_pid(self) -> int | None:
        """The worker process under `payments dev` (None for a stack we did not start)."""
        if self.dev_pid is None:
            return None
        children = Path(f"/proc/{self.dev_pid}/task/{self.dev_pid}/children").read_text().split()
        for pid in children:
            if b"workers.cli\x00worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return int(pid)
        return None


@contextmanager
def running_stack(api: str | None) -> Iterator[Stack]:
    if api:
        yield Stack(api.rstrip("/"), Settings())
        return
    with tempfile.TemporaryDirectory(prefix="payments-bench-") as tmp:
        ports = {
            name: str(free_port())
            for name in ("API_PORT", "POSTGRES_PORT", "REDIS_PORT", "TEMPORAL_PORT", "TEMPORAL_UI_PORT")
        }
        ports["STRIPE_EMULATOR_PORT"] = str(free_port())
        overrides = {f"PAYMENTS_{k}": v for k, v in ports.items()} | {
            "PAYMENTS_DEVSTACK_DIR": tmp,
            "PAYMENTS_LOG_LEVEL": "WARNING",
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_")} | overrides
        print(f"Starting a throwaway stack in {tmp} ...", flush=True)
        with open(os.path.join(tmp, "dev.log"), "wb") as log:
            dev = subprocess.Popen(
                [sys.executable, "-m", "workers.cli", "dev"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
            try:
                settings = Settings.model_validate(_settings_fields(overrides))
                stack = Stack(f"http://127.0.0.1:{ports['API_PORT']}", settings, dev.pid)
                _wait_ready(stack.api, dev, os.path.join(tmp, "dev.log"))
                yield stack
            finally:
                dev.send_signal(signal.SIGINT)
                dev.wait(timeout=60)


def _settings_fields(overrides: dict[str, str]) -> dict[str, str]:
    return {k.removeprefix("PAYMENTS_").lower(): v for k, v in overrides.items()}


def _wait_ready(api: str, dev: subprocess.Popen[bytes], log: str) -> None:
    def still_running() -> None:
        if dev.poll() is not None:
            raise RuntimeError(f"`payments dev` exited with {dev.returncode}; see {log}")

    wait_ready(f"{api}/readyz", still_running, READY_TIMEOUT, f"; see {log}")
