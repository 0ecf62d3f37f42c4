"""`python -m devstack` (= `make dev`) as a test starts it: in its own session, on free ports, in a temp dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from devstack.supervisor import wait_supervised
from payments.config.ports import free_port

READY_WITHIN = 90.0
PORTS = ("api", "postgres", "redis", "temporal", "temporal_ui", "stripe_emulator", "worker_metrics")


def free_ports() -> dict[str, int]:
    return {name: free_port() for name in PORTS}


def dev_env(stack_dir: Path, ports: dict[str, int]) -> dict[str, str]:
    # The default path: no external URL, so every service comes from the wheels.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_")}
    env["PAYMENTS_DEVSTACK_DIR"] = str(stack_dir)
    env.update({f"PAYMENTS_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    return env


def start_dev(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "devstack"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def still_running(process: subprocess.Popen[str]) -> Callable[[], None]:
    """For `wait_until`: fails at once, with everything `make dev` printed, if it has exited."""

    def check() -> None:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""

    return check


def wait_dev_ready(process: subprocess.Popen[str], env: dict[str, str]) -> None:
    """The API answers and `make dev` supervises the stack (a test may kill a service at once)."""
    api = f"http://127.0.0.1:{env['PAYMENTS_API_PORT']}"
    hint = ": the dev stack did not become ready"
    wait_supervised(api, env["PAYMENTS_DEVSTACK_DIR"], still_running(process), READY_WITHIN, hint)


def interrupt(process: subprocess.Popen[str]) -> tuple[int, str]:
    """Ctrl-C, as a developer stops it; its exit code and everything it printed."""
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    return process.returncode, output
