"""Free ports that stay free until their server binds them, handed out once across processes:
the worker's SDK metrics endpoint takes one, and so does every service of a local stack."""

from __future__ import annotations

import atexit
import fcntl
import os
import random
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
    every outgoing connection also takes from, so a connection can take it between the pick and
    the server's bind. A port is handed out once while its taker lives, across processes: a port
    picked for a server that has not bound it yet (a test's pick for the stack it starts) is not
    drawn again by another process (that stack's worker) meanwhile.
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
