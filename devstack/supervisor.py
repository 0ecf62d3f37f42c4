"""Runs the stack's processes, each in its own session: restarts one that exits (with backoff, until
it keeps failing) or that a developer asks to restart, and stops every one of them, in reverse order.

Each child's pid is in `<run_dir>/<name>.pid`; `python -m devstack restart NAME` asks for a restart by
creating `<run_dir>/<name>.restart`, which the supervisor removes once the new process runs."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from devstack.ports import wait_ready, wait_until

log = logging.getLogger(__name__)

# Seconds before each restart of a child that keeps exiting; once they are used up, we give up.
RESTART_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0)
# A child that ran this long before exiting has recovered: its earlier failures are forgotten.
STABLE_AFTER = 60.0


SUPERVISING = "supervising"  # in the run dir while the stack is up and supervised


class ChildDied(RuntimeError):
    pass


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str] | None
    user: str | None
    stop_signal: int
    log_path: Path
    process: subprocess.Popen[bytes] = field(init=False)
    started: float = field(init=False)
    failures: int = 0
    restart_at: float | None = None

    def died(self) -> ChildDied:
        return ChildDied(
            f"{self.name} exited with code {self.process.returncode}; last lines of {self.log_path}:\n"
            f"{tail(self.log_path)}"
        )


class Supervisor:
    def __init__(self, log_dir: Path, run_dir: Path) -> None:
        self.log_dir = log_dir
        self.run_dir = run_dir
        self.children: list[Child] = []
        run_dir.mkdir(parents=True, exist_ok=True)
        for stale in [*run_dir.glob("*.pid"), *run_dir.glob("*.restart"), *run_dir.glob(SUPERVISING)]:
            stale.unlink()
        (run_dir / "supervisor.pid").write_text(f"{os.getpid()}\n")

    def spawn(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        child = Child(
            name, argv, dict(env) if env is not None else None, user, stop_signal, self.log_dir / f"{name}.log"
        )
        self._launch(child)
        self.children.append(child)
        return child

    def _launch(self, child: Child) -> None:
        with child.log_path.open("ab") as out:
            child.process = subprocess.Popen(
                child.argv,
                env=child.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
                user=child.user,
            )
        child.started, child.restart_at = time.monotonic(), None
        (self.run_dir / f"{child.name}.pid").write_text(f"{child.process.pid}\n")

    def first_exited(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def supervise(self) -> None:
        """One round: serve restart requests, restart children whose backoff is over; raise
        ChildDied for a child that keeps exiting."""
        for request in self.run_dir.glob("*.restart"):
            self._restart_on_request(request.stem)
            request.unlink()
        now = time.monotonic()
        for child in self.children:
            if child.process.poll() is None:
                continue
            if child.restart_at is None:
                _signal_group(child.process, signal.SIGKILL)  # what it left behind (a postmaster's backends)
                # SIGKILLed from outside (an operator, the OOM killer, `make chaos`): not a start-up
                # that keeps failing, so it never adds up to giving up.
                killed = child.process.returncode == -signal.SIGKILL
                child.failures = 1 if killed or now - child.started > STABLE_AFTER else child.failures + 1
                if child.failures > len(RESTART_DELAYS):
                    raise ChildDied(f"giving up after {len(RESTART_DELAYS)} restarts: {child.died()}")
                delay = RESTART_DELAYS[child.failures - 1]
                child.restart_at = now + delay
                log.warning(
                    "%s exited with code %s; restarting it in %.0f s (attempt %d of %d), see %s",
                    child.name,
                    child.process.returncode,
                    delay,
                    child.failures,
                    len(RESTART_DELAYS),
                    child.log_path,
                )
            elif now >= child.restart_at:
                self._launch(child)
                log.warning("%s restarted, pid %d", child.name, child.process.pid)

    def _restart_on_request(self, name: str) -> None:
        child = next((c for c in self.children if c.name == name), None)
        if child is None:
            log.warning("no service named %r to restart", name)
            return
        _stop(child)
        self._launch(child)
        child.failures = 0
        log.warning("%s restarted on request, pid %d", child.name, child.process.pid)

    def supervising(self) -> None:
        """Every service serves and the loop that restarts them runs next: what a script waits for
        before it kills one (the API's 200 alone comes while `make dev` may still be waiting)."""
        (self.run_dir / SUPERVISING).touch()

    def stop_all(self) -> None:
        (self.run_dir / SUPERVISING).unlink(missing_ok=True)
        for child in reversed(self.children):
            _stop(child)
            (self.run_dir / f"{child.name}.pid").unlink(missing_ok=True)
        self.children.clear()
        (self.run_dir / "supervisor.pid").unlink(missing_ok=True)


def is_supervising(devstack_dir: str | Path) -> bool:
    """Whether the dev stack in `devstack_dir` is up and supervised (Supervisor.supervising)."""
    return (run_dir(str(devstack_dir)) / SUPERVISING).exists()


def wait_supervised(
    api: str, devstack_dir: str | Path, still_running: Callable[[], None], timeout: float, hint: str
) -> None:
    """The API answers and `make dev` supervises its stack: a script may kill a service at once
    (the API's 200 alone comes while `make dev` may still be waiting for the worker)."""
    wait_ready(f"{api}/readyz", still_running, timeout, hint)
    supervising = partial(is_supervising, devstack_dir)
    wait_until(supervising, f"`make dev` did not start supervising its stack{hint}", timeout, still_running)


def run_dir(devstack_dir: str) -> Path:
    """Where a dev stack keeps its pid files and restart requests."""
    return Path(devstack_dir).resolve() / "run"


def request_restart(run_dir: Path, name: str, timeout: float = 60.0) -> int | None:
    """Ask the supervisor of the dev stack in `run_dir` to restart `name`, at once even if it is
    down and waiting out its restart backoff; the new pid (None if the new process has already exited)."""
    if _read_pid(run_dir / "supervisor.pid") is None:
        raise LookupError(f"no dev stack is running from {run_dir.parent} (start it with `make dev`)")
    pid_file = run_dir / f"{name}.pid"
    if not pid_file.exists():
        running = sorted(p.stem for p in run_dir.glob("*.pid") if p.stem != "supervisor")
        raise LookupError(f"the dev stack runs no service named {name!r}; it runs: {', '.join(running)}")
    request = run_dir / f"{name}.restart"
    request.touch()
    wait_until(lambda: not request.exists(), f"the dev stack did not restart {name}", timeout)
    return _read_pid(pid_file)


def _read_pid(path: Path) -> int | None:
    """The pid in `path` if that process is alive."""
    try:
        pid = int(path.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _stop(child: Child, timeout: float = 15.0) -> None:
    if child.process.poll() is None:
        _signal_group(child.process, child.stop_signal)
        try:
            child.process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(child.process, signal.SIGKILL)
            child.process.wait()
    _signal_group(child.process, signal.SIGKILL)  # grandchildren left in the group


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
