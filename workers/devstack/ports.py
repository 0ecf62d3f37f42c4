"""Port checks, so a taken port is a clear message instead of a crash deep in a child process."""

from __future__ import annotations

import atexit
import fcntl
import os
import random
import socket
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


class PortTakenError(RuntimeError):
    pass


_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# One file per port handed out, holding the pid that took it: shared by every process of this user
# on the machine (a test run's processes, the dev stack's children, a second run beside it).
_CLAIMS = Path(tempfile.gettempdir()) / f"payments-ports-{os.getuid()}"
_CLAIM_LIFETIME = 3600.0  # seconds: past it any claim lapses, its pid alive (perhaps reused) or not
_claimed: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free now and stays free until its server binds it.

    Drawn below the kernel's ephemeral range: a port from bind(0) comes from that range, which
    every outgoing connection also takes from, and one was taken between the pick and the
    server's bind in a CI run. A port is handed out once while its taker lives, across processes:
    a dev stack's worker once drew the port a test had picked for that stack's API.
    """
    low = _ephemeral_low()
    for _ in range(1000):
        port = random.randrange(max(1024, low - 12000), low)  # noqa: S311 (a port, not a secret)
        if is_free(port, host) and claim(port):
            return port
    raise PortTakenError(f"no free port found below {low} on {host}")


def claim(port: int) -> bool:
    """Take `port` for this process unless a live process holds it. Released when this process
    exits; a killed one's claims lapse."""
    with _claims_locked():
        path = _CLAIMS / str(port)
        if path.exists() and not _lapsed(path):
            return False
        path.write_text(str(os.getpid()))
    _claimed.add(port)
    return True


@contextmanager
def _claims_locked() -> Iterator[None]:
    """The claims directory, locked against every other process and thread that claims a port."""
    _CLAIMS.mkdir(mode=0o700, exist_ok=True)
    found = _CLAIMS.lstat()
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid() or found.st_mode & 0o077:
        raise PortTakenError(f"{_CLAIMS} must be a directory only this user can use")
    with (_CLAIMS / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _lapsed(path: Path) -> bool:
    try:
        pid, age = int(path.read_text()), time.time() - path.stat().st_mtime
    except (OSError, ValueError):
        return True
    if age > _CLAIM_LIFETIME:
        return True
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or its pid reused by another user
        return True
    return False


@atexit.register
def _release_claims() -> None:
    for port in _claimed:
        path = _CLAIMS / str(port)
        try:
            if int(path.read_text()) == os.getpid():
                path.unlink()
        except (OSError, ValueError):
            pass


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


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
