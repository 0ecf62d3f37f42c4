"""`payments api --workers N`: N API processes behind one port, each with its own app, all ready."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil

from devstack.ports import wait_ready
from payments.config.ports import free_port
from payments.config.settings import Settings

READY_WITHIN = 90.0


def _env(settings: Settings, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_")}
    return env | {
        "PAYMENTS_API_PORT": str(port),
        "PAYMENTS_DATABASE_URL": str(settings.database_url),
        "PAYMENTS_REDIS_URL": str(settings.redis_url),
        "PAYMENTS_TEMPORAL_ADDRESS": str(settings.temporal_address),
        "PAYMENTS_STRIPE_API_BASE": str(settings.stripe_api_base),
        "PAYMENTS_ENCRYPTION_KEYS": settings.encryption_keys.get_secret_value(),
        "PAYMENTS_LOG_LEVEL": "INFO",
        "PAYMENTS_ENV": "development",  # the repository's development secrets
    }


def test_two_api_processes_serve_one_port(stack_settings: Settings, tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "api.log"
    api = subprocess.Popen(
        [sys.executable, "-m", "payments", "api", "--workers", "2"],
        env=_env(stack_settings, port),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def still_running() -> None:
            assert api.poll() is None, f"`payments api --workers 2` exited with {api.returncode}: {log.read_text()}"

        try:
            wait_ready(f"http://127.0.0.1:{port}/readyz", still_running, READY_WITHIN)
        except TimeoutError as exc:
            raise AssertionError(f"not ready; its log:\n{log.read_text()}") from exc
        servers = [
            child
            for child in psutil.Process(api.pid).children()
            if "multiprocessing" in " ".join(child.cmdline()) and "spawn_main" in " ".join(child.cmdline())
        ]
        assert len(servers) == 2
        for _ in range(20):  # whichever process takes each connection, all answer
            assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30).status_code == 200
    finally:
        api.send_signal(signal.SIGINT)
        try:
            api.wait(30)
        except subprocess.TimeoutExpired:
            api.kill()
            api.wait()
