"""`payments backup take|list|verify|restore`: PostgreSQL's backups, kept by Barman.

Barman takes base backups with pg_basebackup and keeps every WAL segment pg_receivewal streams
from the server as it is written, so a restore reaches any moment up to the last streamed commit.
These commands only name Barman's own for an operator; the Barman configuration (where the
server is, where backups go, retention) is the operator's file (`PAYMENTS_BARMAN_CONFIG`), or the
dev stack's when unset.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from payments.config.settings import Settings

DEV_CONFIG = Path("barman") / "barman.conf"  # under the dev stack's folder


def barman_executable() -> str:
    beside = Path(sys.executable).with_name("barman")  # ours, in this virtual environment
    found = str(beside) if beside.exists() else shutil.which("barman")
    if found is None:
        raise RuntimeError("Barman is not installed (it is a dependency: make .venv/.installed)")
    return found


def config_path(settings: Settings) -> Path:
    return Path(settings.barman_config) if settings.barman_config else Path(settings.devstack_dir) / DEV_CONFIG


def barman(settings: Settings, *args: str) -> list[str]:
    return [barman_executable(), "--config", str(config_path(settings)), *args]


def _run(command: list[str]) -> int:
    return subprocess.run(command, check=False).returncode


def take(settings: Settings) -> int:
    """A base backup, waiting until the WAL it needs to be consistent is archived. Barman refuses a
    server's first backup until a WAL segment is archived, and archives a streamed segment only once
    the next one has begun, which PostgreSQL begins on its next write: on a server nobody writes to,
    `switch-wal --archive` waited for some write (up to its timeout). So two WAL switches first,
    each after a forced checkpoint (a WAL record): the first closes the segment being written, the
    second's checkpoint begins the next, and the backup's own check archives the first."""
    server = settings.barman_server
    for _ in range(2):
        if switched := _run(barman(settings, "switch-wal", "--force", server)):
            return switched
    return _run(barman(settings, "backup", "--wait", server))


def list_backups(settings: Settings) -> int:
    return _run(barman(settings, "list-backups", settings.barman_server))


def verify(settings: Settings, backup_id: str) -> int:
    """The backup's files against its manifest (pg_verifybackup), and the WAL it needs present."""
    server = settings.barman_server
    checks = [barman(settings, "verify-backup", server, backup_id), barman(settings, "check-backup", server, backup_id)]
    return max(_run(check) for check in checks)


def restore_command(settings: Settings, into: Path, to_time: datetime | None, backup_id: str = "latest") -> list[str]:
    """Barman's recover into a new data directory: the backup, then every WAL segment after it,
    including the one still being streamed (`--partial-wal`), replayed up to `to_time` (then the
    server is promoted) or to the last commit received."""
    target = ["--target-time", to_time.isoformat(), "--target-action", "promote"] if to_time else []
    recover = ["recover", "--no-get-wal", "--partial-wal", *target]
    return barman(settings, *recover, settings.barman_server, backup_id, str(into))


def restore(settings: Settings, into: Path, to_time: datetime | None, backup_id: str) -> int:
    if into.exists() and any(into.iterdir()):
        print(f"{into} is not empty: restore into a new data directory", file=sys.stderr)
        return 2
    code = _run(restore_command(settings, into, to_time, backup_id))
    if code == 0:
        print(
            f"Start PostgreSQL on {into} as its owner, with max_connections at least the backed-up server's;"
            " it replays the WAL, then serves."
        )
    return code
