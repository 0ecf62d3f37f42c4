"""The dev stack's supervisor restarts a child that exits, and gives up on one that keeps exiting."""

import sys
import threading
from pathlib import Path

import pytest

from devstack import supervisor
from devstack.ports import wait_until
from devstack.supervisor import ChildDied, Supervisor


def test_a_child_that_keeps_exiting_is_restarted_then_given_up_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervisor, "RESTART_DELAYS", (0.0, 0.0))
    sup = Supervisor(tmp_path / "logs", tmp_path / "run")
    child = sup.spawn("flaky", [sys.executable, "-c", "print('broken config'); raise SystemExit(3)"])
    pids: set[int] = set()

    def restarting() -> bool:
        sup.supervise()
        pids.add(child.process.pid)
        return False

    try:
        with pytest.raises(
            ChildDied, match=r"giving up after 2 restarts: flaky exited with code 3(.|\n)*broken config"
        ):
            wait_until(restarting, "the supervisor never gave up", 60)
    finally:
        sup.stop_all()
    assert len(pids) == 3  # the first run and two restarts
    assert not list((tmp_path / "run").iterdir())


def test_a_child_killed_from_outside_is_always_restarted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL from an operator or `make chaos`, however often, is not a child that keeps failing."""
    monkeypatch.setattr(supervisor, "RESTART_DELAYS", (0.0, 0.0))
    sup = Supervisor(tmp_path / "logs", tmp_path / "run")
    child = sup.spawn("worker", [sys.executable, "-c", "import time; time.sleep(600)"])
    pids = [child.process.pid]

    def replaced() -> bool:
        sup.supervise()
        return child.process.pid != pids[-1] and child.process.poll() is None

    try:
        for _ in range(4):  # more kills than RESTART_DELAYS allows failures
            child.process.kill()
            wait_until(replaced, "the killed child was not restarted", 30)
            pids.append(child.process.pid)
    finally:
        sup.stop_all()
    assert len(set(pids)) == 5


def test_a_child_waiting_out_its_backoff_restarts_at_once_on_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service that is down (its data being restored, say) starts when asked, not minutes later."""
    monkeypatch.setattr(supervisor, "RESTART_DELAYS", (600.0,))
    sup = Supervisor(tmp_path / "logs", tmp_path / "run")
    child = sup.spawn("postgres", [sys.executable, "-c", "raise SystemExit(1)"])
    first = child.process.pid
    stop = threading.Event()

    def supervise() -> None:
        while not stop.is_set():
            sup.supervise()
            stop.wait(0.05)  # the supervisor's round

    wait_until(lambda: child.process.poll() is not None, "the child did not exit", 30)
    rounds = threading.Thread(target=supervise)
    rounds.start()
    try:
        wait_until(lambda: child.restart_at is not None, "the supervisor did not schedule a restart", 30)
        child.argv = [sys.executable, "-c", "import time; time.sleep(600)"]  # its data is back
        pid = supervisor.request_restart(tmp_path / "run", "postgres", timeout=30)
        assert pid is not None and pid != first and child.process.poll() is None
    finally:
        stop.set()
        rounds.join()
        sup.stop_all()
