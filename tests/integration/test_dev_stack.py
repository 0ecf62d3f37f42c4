"""`make dev` (= `python -m devstack`): the whole stack from wheels, stopped cleanly by Ctrl-C."""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from devstack.ports import wait_until
from devstack.supervisor import is_supervising
from tests.dev_stack import dev_env, free_ports, interrupt, start_dev, still_running, wait_dev_ready


def _token(env: dict[str, str], sub: str, role: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "payments", "token", "--sub", sub, "--role", role],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def _names(processes: list[psutil.Process]) -> set[str]:
    """Their names, leaving out any that exited since they were listed (a PostgreSQL backend whose
    connection just closed, say)."""
    names = set()
    for process in processes:
        try:
            names.add(process.name())
        except psutil.NoSuchProcess:
            pass
    return names


def _still_running(processes: set[psutil.Process] | list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:  # exited between the two questions
            pass
    return alive


@pytest.mark.timeout(240)
def test_dev_stack_starts_serves_stops_cleanly_and_keeps_its_data(service_tmp: Path) -> None:
    ports = free_ports()
    env = dev_env(service_tmp / "stack", ports)
    api = f"http://127.0.0.1:{ports['api']}"

    first = start_dev(env)
    wait_dev_ready(first, env)
    children = _descendants(first.pid)
    assert {"postgres", "redis-server", "temporal"} <= _names(children)
    assert httpx.get(f"http://127.0.0.1:{ports['temporal_ui']}/", timeout=5).status_code == 200
    assert httpx.get(f"{api}/docs", timeout=5).status_code == 200
    headers = {"Authorization": f"Bearer {_token(env, 'op', 'operator')}"}
    merchant = _open_merchant(api, headers)
    assert merchant["payout_account"].startswith("acct_")

    code, output = interrupt(first)
    assert code == 0, output
    assert not is_supervising(service_tmp / "stack")
    assert "Payments dev stack is up" in output and "export TOKEN=" in output
    assert "setup plugin" not in output  # no alembic start-up noise
    for ours in ("api", "worker", "stripe-emulator"):  # every line JSON, as the README says
        text = (service_tmp / "stack" / "logs" / f"{ours}.log").read_text()
        assert "\x1b[" not in text and all(json.loads(line) for line in text.splitlines()), ours
    worker_log = (service_tmp / "stack" / "logs" / "worker.log").read_text().splitlines()
    started = [json.loads(line) for line in worker_log if '"worker_started"' in line]
    assert started and started[0]["event_loop"] == "uvloop"  # the cheaper loop (payments/cli/main.py)
    assert not _still_running(children)

    second = start_dev(env)
    try:
        wait_dev_ready(second, env)
        # The same data: the merchant written in the first run is still in PostgreSQL.
        again = httpx.get(f"{api}/merchants/{merchant['id']}", headers=headers, timeout=10)
        assert again.status_code == 200 and again.json() == merchant
    finally:
        code, output = interrupt(second)
    assert code == 0, output


def _pids(stack_dir: Path) -> dict[str, int]:
    """The supervisor's pid files: one per service it runs."""
    return {p.stem: int(p.read_text()) for p in (stack_dir / "run").glob("*.pid") if p.stem != "supervisor"}


def _without(pids: dict[str, int], name: str) -> dict[str, int]:
    return {k: v for k, v in pids.items() if k != name}


def _open_merchant(api: str, operator: dict[str, str]) -> dict[str, Any]:
    """A new merchant with its connected account: at once on 201; on 202 (the onboarding outlasted
    the API's wait: a loaded machine, a worker just restarted) once GET shows its account."""
    created = httpx.post(f"{api}/merchants", json={"name": "M", "currency": "usd"}, headers=operator, timeout=20)
    assert created.status_code in (201, 202), created.text
    url = f"{api}/merchants/{created.json()['id']}"

    def opened() -> bool:
        answer = httpx.get(url, headers=operator, timeout=10)
        return answer.status_code == 200 and answer.json()["payout_account"] is not None

    wait_until(opened, "no merchant with its account", 60)
    return dict(httpx.get(url, headers=operator, timeout=10).json())


def _pay_and_confirm(api: str, env: dict[str, str]) -> str:
    """A payment through the API, the worker and the emulator; its final status."""
    operator = {"Authorization": f"Bearer {_token(env, 'op', 'operator')}"}
    merchant = _open_merchant(api, operator)
    user = httpx.post(f"{api}/users", json={"name": "U"}, headers=operator, timeout=20).json()["id"]
    payer = {"Authorization": f"Bearer {_token(env, user, 'user')}"}
    order = {"user_id": user, "merchant_id": merchant["id"], "amount": 1999, "currency": "usd"}
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
    ports = free_ports()
    stack_dir = service_tmp / "stack"
    env = dev_env(stack_dir, ports)
    api = f"http://127.0.0.1:{ports['api']}"
    dev = start_dev(env)
    seen: set[psutil.Process] = set()
    try:
        wait_dev_ready(dev, env)
        before = _pids(stack_dir)
        assert set(before) == {"postgres", "redis", "temporal", "stripe-emulator", "worker", "api"}

        # Fault: the worker is SIGKILLed. Invariant: a new worker runs, the rest of the stack too.
        seen.update(_descendants(dev.pid))
        os.kill(before["worker"], signal.SIGKILL)
        wait_until(lambda: _pids(stack_dir)["worker"] != before["worker"], "no new worker", 60, still_running(dev))
        after_crash = _pids(stack_dir)
        assert _without(after_crash, "worker") == _without(before, "worker")
        wait_dev_ready(dev, env)
        assert _pay_and_confirm(api, env) == "confirmed"

        seen.update(_descendants(dev.pid))
        restart = subprocess.run(
            [sys.executable, "-m", "devstack", "restart", "api"], env=env, capture_output=True, text=True
        )
        assert restart.returncode == 0, restart.stderr
        after_restart = _pids(stack_dir)
        assert after_restart["api"] != after_crash["api"]
        assert _without(after_restart, "api") == _without(after_crash, "api")
        wait_dev_ready(dev, env)
        seen.update(_descendants(dev.pid))
        # An impatient second Ctrl-C, while the stack is stopping, must not leave orphans either.
        dev.send_signal(signal.SIGINT)
        wait_until(lambda: "api" not in _pids(stack_dir), "the API was not stopped", 60)
    finally:
        code, output = interrupt(dev)
    assert code == 0, output
    assert "worker exited with code -9; restarting it" in output and "api restarted on request" in output
    assert not _still_running(seen)
    assert not list((stack_dir / "run").glob("*.pid"))


def test_every_taken_port_is_named_at_once_with_its_setting_not_a_traceback(service_tmp: Path) -> None:
    with socket.socket() as api, socket.socket() as temporal:
        for taken in (api, temporal):
            taken.bind(("127.0.0.1", 0))
            taken.listen()
        ports = free_ports() | {"api": api.getsockname()[1], "temporal": temporal.getsockname()[1]}
        result = subprocess.run(
            [sys.executable, "-m", "devstack"],
            env=dev_env(service_tmp / "stack", ports),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    for name, setting in (("api", "PAYMENTS_API_PORT"), ("temporal", "PAYMENTS_TEMPORAL_PORT")):
        assert f"127.0.0.1:{ports[name]}" in result.stderr and setting in result.stderr
    assert "PAYMENTS_REDIS_PORT" not in result.stderr  # a free one is not named
    assert "Traceback" not in result.stderr + result.stdout
    assert not (service_tmp / "stack").exists()  # refused before anything started
