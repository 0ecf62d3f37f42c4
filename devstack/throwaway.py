"""The stack a benchmark drives: a running one (`--api`), or a fresh `make dev` in a temp dir on
free ports, so it neither collides with a developer's `make dev` nor keeps its data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from devstack.patroni import PATRONI_PORTS
from devstack.ports import free_port_run
from devstack.redis import RedisServer
from devstack.supervisor import wait_supervised
from payments.config.local_stack import local_settings
from payments.config.ports import free_port
from payments.config.settings import Settings

READY_TIMEOUT = 120.0


@dataclass(frozen=True)
class Stack:
    api: str
    settings: Settings  # what the bench needs to reach the same Temporal, PostgreSQL and Stripe
    dev_pid: int | None = None  # the `make dev` process whose children run the stack
    replacements: list[subprocess.Popen[bytes]] = field(default_factory=list)  # children we restarted

    def database_url(self) -> str:
        return str(local_settings(self.settings).database_url)

    def redis_url(self) -> str:
        local = RedisServer(Path(self.settings.devstack_dir) / "redis", self.settings.redis_port)
        return self.settings.redis_url or local.url

    def stripe_api_base(self) -> str:
        return self.settings.stripe_api_base or f"http://127.0.0.1:{self.settings.stripe_emulator_port}"

    def worker_pid(self) -> int | None:
        """The worker process under `make dev` (None for a stack we did not start)."""
        worker = self.process("worker")
        return worker.pid if worker else None

    def process(self, role: str) -> psutil.Process | None:
        """The stack's live process in `role` (`worker`, `api`, `postgres`, `redis-server`,
        `temporal`, ...), the first of `processes(role)`."""
        return next(iter(self.processes(role)), None)

    def processes(self, role: str) -> list[psutil.Process]:
        """The stack's live processes in `role`: children of `make dev`, and replacements or
        extra ones we started. Empty for a stack we did not start."""
        if self.dev_pid is None:
            return []
        ours = [psutil.Process(p.pid) for p in self.replacements if p.poll() is None]
        found = []
        for process in psutil.Process(self.dev_pid).children() + ours:
            try:
                if _role(process) == role and not _gone(process):
                    found.append(process)
            except psutil.NoSuchProcess:
                continue
        return found

    def replace(self, role: str, sig: int = signal.SIGKILL, within: float = 5.0) -> int:
        """Stop the `role` process with `sig` and return the pid of its successor: the one that
        `make dev` starts if it restarts children, else, after `within` s, one we start with
        the same command line and environment."""
        old = self.process(role)
        if old is None:
            raise RuntimeError(f"the stack has no live {role} process")
        argv, env, cwd = old.cmdline(), old.environ(), old.cwd()
        old.send_signal(sig)
        deadline = time.monotonic() + 10
        while not _gone(old):
            if time.monotonic() > deadline:  # it ignored `sig`
                old.kill()
                deadline = float("inf")
            time.sleep(0.1)  # polling a condition with a deadline
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            successor = self.process(role)
            if successor is not None:
                return successor.pid
            time.sleep(0.1)  # polling a condition with a deadline
        if not self._dev_running():
            raise RuntimeError(f"`make dev` stopped the whole stack when its {role} was stopped")
        return self._start(role, argv, env, cwd)

    def add(self, role: str) -> int:
        """Start one more `role` process (a second worker) like the stack's, stopped with the stack."""
        model = self.process(role)
        if model is None:
            raise RuntimeError(f"the stack has no live {role} process")
        return self._start(role, model.cmdline(), model.environ(), model.cwd())

    def _start(self, role: str, argv: list[str], env: dict[str, str], cwd: str) -> int:
        with (Path(self.settings.devstack_dir) / "logs" / f"{role}.log").open("ab") as log:
            process = subprocess.Popen(
                argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.replacements.append(process)
        return process.pid

    def _dev_running(self) -> bool:
        try:
            return self.dev_pid is not None and not _gone(psutil.Process(self.dev_pid))
        except psutil.NoSuchProcess:
            return False

    def stop_replacements(self) -> None:
        for process in self.replacements:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE  # dead, not yet reaped by `make dev`
    except psutil.NoSuchProcess:
        return True


def _role(process: psutil.Process) -> str:
    """`worker` for `python -m payments worker`, else the process name (`postgres`, `redis-server`)."""
    argv = process.cmdline()
    return argv[-1] if "payments" in argv else process.name()


@contextmanager
def running_stack(api: str | None, settings: dict[str, str] | None = None) -> Iterator[Stack]:
    """`settings`: extra PAYMENTS_* variables for a stack we start (e.g. a shorter Stripe timeout)."""
    if api:
        yield Stack(api.rstrip("/"), Settings())
        return
    with tempfile.TemporaryDirectory(prefix="payments-bench-") as tmp:
        ports = {
            name: str(free_port())
            for name in (
                "API_PORT",
                "POSTGRES_PORT",
                "REDIS_PORT",
                "TEMPORAL_PORT",
                "TEMPORAL_UI_PORT",
                "STRIPE_EMULATOR_PORT",
                "WORKER_METRICS_PORT",
                "POSTGRES_STANDBY_PORT",
            )
        } | {"PATRONI_PORT": str(free_port_run(PATRONI_PORTS))}
        overrides = (
            {f"PAYMENTS_{k}": v for k, v in ports.items()}
            | {
                "PAYMENTS_DEVSTACK_DIR": tmp,
                "PAYMENTS_LOG_LEVEL": "WARNING",
            }
            | (settings or {})
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_")} | overrides
        print(f"Starting a throwaway stack in {tmp} ...", flush=True)
        stack_settings = Settings.model_validate(_settings_fields(overrides))
        # A SIGTERM (a CI job's end, `kill`) unwinds like Ctrl-C, through the `finally` that
        # stops the stack: by default it ends this process and leaves the stack running.
        terminate = signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            with open(os.path.join(tmp, "dev.log"), "wb") as log:
                dev = subprocess.Popen(
                    [sys.executable, "-m", "devstack"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches us, and we stop it once (not twice)
                )
            stack = Stack(f"http://127.0.0.1:{ports['API_PORT']}", stack_settings, dev.pid)
            try:
                _wait_ready(stack.api, tmp, dev, os.path.join(tmp, "dev.log"))
                yield stack
            finally:
                dev.send_signal(signal.SIGINT)  # first: a second signal must not skip it
                stack.stop_replacements()
                try:
                    dev.wait(timeout=60)
                except subprocess.TimeoutExpired:  # the supervisor hung: its whole process group goes
                    os.killpg(dev.pid, signal.SIGKILL)
                    dev.wait()
        finally:
            signal.signal(signal.SIGTERM, terminate)


def _settings_fields(overrides: dict[str, str]) -> dict[str, str]:
    return {k.removeprefix("PAYMENTS_").lower(): v for k, v in overrides.items()}


def _wait_ready(api: str, stack_dir: str, dev: subprocess.Popen[bytes], log: str) -> None:
    """The API answers and the stack is supervised: a fault run may kill a service at once."""

    def still_running() -> None:
        if dev.poll() is not None:
            raise RuntimeError(f"`make dev` exited with {dev.returncode}; see {log}")

    wait_supervised(api, stack_dir, still_running, READY_TIMEOUT, f"; see {log}")
