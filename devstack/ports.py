"""Port checks, so a taken port is a clear message instead of a crash deep in a child process, and
waits on a service coming up."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import httpx

from payments.config.ports import PortTakenError, claim, free_port, is_free


def _another_port(port: int, host: str, avoid: set[int]) -> int:
    """A port to suggest instead: 10000 higher when that is free, else any free one."""
    candidate = port + 10000
    while candidate in avoid or not (candidate < 65536 and is_free(candidate, host)):
        candidate = free_port(host)
    avoid.add(candidate)
    return candidate


def ensure_free(planned: list[tuple[int, str, str]], host: str = "127.0.0.1") -> None:
    """`planned` holds (port, what needs it, the setting that moves it). Raise PortTakenError naming
    every port that is taken or asked for twice, at once: one message, one fix, one restart."""
    claimed: dict[int, str] = {}
    problems, moves, avoid = [], [], {port for port, _, _ in planned}
    for port, what, setting in planned:
        if port in claimed:
            problems.append(f"  {host}:{port}  {what}: {claimed[port]} asks for it too; move one with {setting}")
        elif not is_free(port, host):
            problems.append(f"  {host}:{port}  {what}: already in use; move it with {setting}")
        else:
            claimed[port] = what
            continue
        moves.append(f"{setting}={_another_port(port, host, avoid)}")
    if problems:
        raise PortTakenError(
            f"The stack cannot take {len(problems)} of its ports:\n" + "\n".join(problems) + "\n"
            f"Stop whatever holds them, or move them, e.g.: {' '.join(moves)} make dev"
        )


def free_port_run(count: int, host: str = "127.0.0.1") -> int:
    """The first of `count` consecutive free ports, each claimed (Patroni's REST APIs and Raft)."""
    for _ in range(1000):
        first = free_port(host)
        if all(is_free(port, host) and claim(port) for port in range(first + 1, first + count)):
            return first
    raise PortTakenError(f"no {count} consecutive free ports found on {host}")


def is_listening(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(
    ready: Callable[[], bool], what: str, timeout: float, still_running: Callable[[], None] = lambda: None
) -> None:
    """Poll `ready` until it holds. `still_running` raises if what should become ready has died, so
    a crash is reported at once instead of after the timeout."""
    deadline = time.monotonic() + timeout
    while not ready():
        still_running()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} (waited {timeout:.0f}s)")
        time.sleep(0.1)  # polling a condition with a deadline


def wait_listening(port: int, what: str, timeout: float = 60.0, host: str = "127.0.0.1") -> None:
    wait_until(lambda: is_listening(port, host), f"{what} did not start listening on {host}:{port}", timeout)


def answers_200(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_ready(url: str, still_running: Callable[[], None], timeout: float, hint: str = "") -> None:
    """Poll `url` until it answers 200 (see `wait_until`)."""
    wait_until(lambda: answers_200(url), f"{url} did not answer 200{hint}", timeout, still_running)
