"""The local PostgreSQL starts from a checkout under a private (0700) folder, as root too (it then
runs as a service user), and opens no folder of the user's to anyone."""

import os
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from devstack.ports import wait_until
from devstack.postgres import PostgresServer
from payments.config.ports import free_port


def _modes(path: Path) -> dict[Path, int]:
    return {folder: stat.S_IMODE(folder.stat().st_mode) for folder in [path, *path.parents]}


def test_postgres_starts_under_a_private_folder_and_leaves_every_ancestor_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with tempfile.TemporaryDirectory(prefix="payments-private-") as private:
        os.chmod(private, 0o700)
        monkeypatch.chdir(private)  # `make dev` runs in the checkout: the server must not need it
        data_dir = Path(private) / "checkout" / ".devstack" / "postgres"
        data_dir.parent.mkdir(parents=True)
        before = _modes(data_dir.parent)
        server = PostgresServer(data_dir, free_port())
        server.initialize()
        process = subprocess.Popen(server.command(), user=server.run_as, stdout=subprocess.DEVNULL)
        try:
            wait_until(server.accepts_queries, "PostgreSQL did not get ready", 120)
            server.create_database()
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(30)
            server.discard()
        assert _modes(data_dir.parent) == before
        assert before[Path(private)] == 0o700
