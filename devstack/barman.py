"""Barman beside the local cluster (`PAYMENTS_DEV_BACKUPS=true make dev`): its configuration for
the dev stack's PostgreSQL, and its WAL receiver as a supervised child.

The receiver is a synchronous standby of the server (synchronous_standby_names names it), so a
commit is acknowledged only once its WAL is on Barman's disk: losing the server's disk then loses
no acknowledged commit. The price is a round trip and an fsync of the receiver per commit, and
commits wait while the receiver is down (the supervisor restarts it within seconds).
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from pathlib import Path

from devstack.postgres import PostgresServer
from payments.cli.backups import barman, config_path
from payments.config.settings import Settings

# The application_name Barman gives pg_receivewal, and so the standby name PostgreSQL waits for.
RECEIVER_NAME = "barman_receive_wal"


@dataclass(frozen=True)
class BarmanAgent:
    settings: Settings
    postgres: PostgresServer

    @property
    def config(self) -> Path:
        return config_path(self.settings)

    def write_config(self) -> None:
        home = self.config.parent.resolve()
        (home / "log").mkdir(parents=True, exist_ok=True)
        address = f"host=127.0.0.1 port={self.postgres.port} user=postgres"
        self.config.write_text(
            "\n".join(
                [
                    "[barman]",
                    f"barman_home = {home}",
                    f"barman_user = {getpass.getuser()}",
                    f"log_file = {home / 'log' / 'barman.log'}",
                    "log_level = INFO",
                    f"path_prefix = {self.postgres.bin_path}",
                    "",
                    f"[{self.settings.barman_server}]",
                    "description = the dev stack's PostgreSQL",
                    f"conninfo = {address} dbname=postgres",
                    f"streaming_conninfo = {address}",
                    "backup_method = postgres",
                    # A backup starts at once (pg_basebackup --checkpoint=fast) instead of after a
                    # spread checkpoint, which paces even a few dirty pages over seconds.
                    "immediate_checkpoint = true",
                    "streaming_archiver = on",
                    f"streaming_archiver_name = {RECEIVER_NAME}",
                    "slot_name = barman",
                    "create_slot = auto",
                    "archiver = off",
                    "",
                ]
            )
        )

    def receiver_command(self) -> list[str]:
        """Barman's WAL receiver in the foreground (it creates its replication slot if missing)."""
        return barman(self.settings, "receive-wal", self.settings.barman_server)

    @staticmethod
    def postgres_settings() -> list[str]:
        return [f"synchronous_standby_names={RECEIVER_NAME}"]
