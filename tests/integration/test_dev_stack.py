"""`make dev` (= `payments dev`): the whole stack from wheels, stopped cleanly by Ctrl-C."""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from workers.devstack.ports import free_port, wait_ready

READY_WITHIN = 90.0


def _env(stack_dir: Path, ports: dict[str, int]) -> dict[str, str]:
    # The default path: no external URL, so every service comes from the wheels.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_")}
    env["PAYMENTS_DEVSTACK_DIR"] = str(stack_dir)
    env.update({f"PAYMENTS_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    return env


def _start(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "dev"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _wait_ready(process: subprocess.Popen[str], api: str) -> None:
    def still_running() -> None:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""

    wait_ready(f"{api}/readyz", still_running, READY_WITHIN, ": the dev stack did not become ready")


def _interrupt(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    return process.returncode, output


def _descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


@pytest.mark.timeout(240)
def test_dev_stack_starts_serves_stops_cleanly_and_keeps_its_data(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("api", "postgres", "redis", "temporal", "temporal_ui", "stripe_emulator")}
    env = _env(tmp_path / "stack", ports)
    api = f"http://127.0.0.1:{ports['api']}"

    first = _start(env)
    _wait_ready(first, api)
    children = _descendants(first.pid)
    assert {"postgres", "redis-server", "temporal"} <= {c.name() for c in children}
    assert httpx.get(f"http://127.0.0.1:{ports['temporal_ui']}/", timeout=5).status_code == 200
    assert httpx.get(f"{api}/docs", timeout=5).status_code == 200
    operator = subprocess.run(
        [sys.executable, "-m", "workers.cli", "token", "--sub", "op", "--role", "operator"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    headers = {"Authorization": f"Bearer {operator}"}
    merchant = httpx.post(f"{api}/merchants", json={"name": "M", "currency": "usd"}, headers=headers, timeout=20)
    assert merchant.status_code == 201 and merchant.json()["payout_account"].startswith("acct_")

    code, output = _interrupt(first)
    assert code == 0, output
    assert "Payments dev stack is up" in output and "export TOKEN=" in output
    assert "setup plugin" not in output  # no alembic start-up noise
    for ours in ("api", "worker", "stripe-emulator"):  # every line JSON, as the README says
        text = (tmp_path / "stack" / "logs" / f"{ours}.log").read_text()
        assert "\x1b[" not in text and all(json.loads(line) for line in text.splitlines()), ours
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]

    second = _start(env)
    try:
        _wait_ready(second, api)
        # The same data: the merchant written in the first run is still in PostgreSQL.
        again = httpx.get(f"{api}/merchants/{merchant.json()['id']}", headers=headers, timeout=10)
        assert again.status_code == 200 and again.json() == merchant.json()
    finally:
        code, output = _interrupt(second)
    assert code == 0, output


def test_a_taken_port_is_a_clear_message_not_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "workers.cli", "dev"],
            env=_env(tmp_path / "stack", {"api": port}),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in result.stderr and "PAYMENTS_API_PORT" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
