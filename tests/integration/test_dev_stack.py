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

from workers.devstack.ports import free_port, wait_ready, wait_until

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


def _token(env: dict[str, str], sub: str, role: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", "token", "--sub", sub, "--role", role],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _interrupt(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    return process.returncode, output


def _descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


@pytest.mark.timeout(240)
def test_dev_stack_starts_serves_stops_cleanly_and_keeps_its_data(service_tmp: Path) -> None:
    ports = {name: free_port() for name in ("api", "postgres", "redis", "temporal", "temporal_ui", "stripe_emulator")}
    env = _env(service_tmp / "stack", ports)
    api = f"http://127.0.0.1:{ports['api']}"

    first = _start(env)
    _wait_ready(first, api)
    children = _descendants(first.pid)
    assert {"postgres", "redis-server", "temporal"} <= {c.name() for c in children}
    assert httpx.get(f"http://127.0.0.1:{ports['temporal_ui']}/", timeout=5).status_code == 200
    assert httpx.get(f"{api}/docs", timeout=5).status_code == 200
    headers = {"Authorization": f"Bearer {_token(env, 'op', 'operator')}"}
    merchant = httpx.post(f"{api}/merchants", json={"name": "M", "currency": "usd"}, headers=headers, timeout=20)
    assert merchant.status_code == 201 and merchant.json()["payout_account"].startswith("acct_")

    code, output = _interrupt(first)
    assert code == 0, output
    assert "Payments dev stack is up" in output and "export TOKEN=" in output
    assert "setup plugin" not in output  # no alembic start-up noise
    for ours in ("api", "worker", "stripe-emulator"):  # every line JSON, as the README says
        text = (service_tmp / "stack" / "logs" / f"{ours}.log").read_text()
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


def _pids(stack_dir: Path) -> dict[str, int]:
    """The supervisor's pid files: one per service it runs."""
    return {p.stem: int(p.read_text()) for p in (stack_dir / "run").glob("*.pid") if p.stem != "supervisor"}


def _without(pids: dict[str, int], name: str) -> dict[str, int]:
    return {k: v for k, v in pids.items() if k != name}


def _pay_and_confirm(api: str, env: dict[str, str]) -> str:
    """A payment through the API, the worker and the emulator; its final status."""
    operator = {"Authorization": f"Bearer {_token(env, 'op', 'operator')}"}
    merchant = httpx.post(f"{api}/merchants", json={"name": "M", "currency": "usd"}, headers=operator, timeout=20)
    user = httpx.post(f"{api}/users", json={"name": "U"}, headers=operator, timeout=20).json()["id"]
    payer = {"Authorization": f"Bearer {_token(env, user, 'user')}"}
    order = {"user_id": user, "merchant_id": merchant.json()["id"], "amount": 1999, "currency": "usd"}
    init = httpx.post(
        f"{api}/payments/init",
        json=order | {"card_token": "pm_card_visa", "idempotency_key": "after-crash"},
        headers=payer,
        timeout=30,
    )
    assert init.status_code == 201, init.text
    confirm = httpx.post(f"{api}/payments/confirm", json={"tx_id": init.json()["id"]}, headers=payer, timeout=30)
    return str(confirm.json()["status"])


@pytest.mark.timeout(300)
def test_a_killed_worker_is_restarted_one_service_restarts_alone_and_ctrl_c_leaves_no_orphan(service_tmp: Path) -> None:
    ports = {name: free_port() for name in ("api", "postgres", "redis", "temporal", "temporal_ui", "stripe_emulator")}
    stack_dir = service_tmp / "stack"
    env = _env(stack_dir, ports)
    api = f"http://127.0.0.1:{ports['api']}"
    dev = _start(env)
    seen: set[psutil.Process] = set()
    try:
        _wait_ready(dev, api)
        before = _pids(stack_dir)
        assert set(before) == {"postgres", "redis", "temporal", "stripe-emulator", "worker", "api"}

        # Fault: the worker is SIGKILLed. Invariant: a new worker runs, the rest of the stack too.
        seen.update(_descendants(dev.pid))
        os.kill(before["worker"], signal.SIGKILL)
        wait_until(lambda: _pids(stack_dir)["worker"] != before["worker"], "no new worker", 60)
        after_crash = _pids(stack_dir)
        assert _without(after_crash, "worker") == _without(before, "worker")
        _wait_ready(dev, api)
        assert _pay_and_confirm(api, env) == "confirmed"

        seen.update(_descendants(dev.pid))
        restart = subprocess.run(
            [sys.executable, "-m", "workers.cli", "dev", "restart", "api"], env=env, capture_output=True, text=True
        )
        assert restart.returncode == 0, restart.stderr
        after_restart = _pids(stack_dir)
        assert after_restart["api"] != after_crash["api"]
        assert _without(after_restart, "api") == _without(after_crash, "api")
        _wait_ready(dev, api)
        seen.update(_descendants(dev.pid))
        # An impatient second Ctrl-C, while the stack is stopping, must not leave orphans either.
        dev.send_signal(signal.SIGINT)
        wait_until(lambda: "api" not in _pids(stack_dir), "the API was not stopped", 60)
    finally:
        code, output = _interrupt(dev)
    assert code == 0, output
    assert "worker exited with code -9; restarting it" in output and "api restarted on request" in output
    assert not [p for p in seen if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not list((stack_dir / "run").glob("*.pid"))


def test_a_taken_port_is_a_clear_message_not_a_traceback(service_tmp: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "workers.cli", "dev"],
            env=_env(service_tmp / "stack", {"api": port}),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in result.stderr and "PAYMENTS_API_PORT" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
