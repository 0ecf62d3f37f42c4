"""The dev stack's supervisor restarts a child that exits, and gives up on one that keeps exiting."""

import sys
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
