"""PostgreSQL as a primary and a synchronous standby under Patroni, which fails over on its own.

Two Patroni nodes and a Raft witness (`patroni_raft_controller`) elect the leader among three
voters, so losing any one of them leaves a quorum; Patroni's built-in Raft means no etcd to run.
`synchronous_mode` makes a commit wait for the standby, and Patroni promotes only a synchronous
standby, so a commit the API acknowledged survives the primary's loss. Clients reach whichever
node is primary through a multi-host URL with `target_session_attrs=read-write`.
"""

from __future__ import annotations

import importlib.metadata
import os
import pwd
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from packaging.requirements import Requirement

from devstack.postgres import PostgresServer, _readable_by_all, _service_home
from payments.config.settings import Settings

NODES = 2
PATRONI_PORTS = 2 * NODES + 1  # each node's REST API and Raft, the witness's Raft
# Patroni's smallest lease; a crashed primary postgres is not restarted in place but failed over at
# once (primary_start_timeout 0), so the lease only bounds the loss of a whole node.
TTL_SECONDS = 20
LOOP_WAIT_SECONDS = 1


def _service_python_path() -> Path:
    """As root, Patroni runs as PostgreSQL's service user, which cannot read our virtual
    environment (its interpreter may live under /root): a copy of Patroni and what it needs,
    once per version, beside the copy of the server binaries."""
    version = importlib.metadata.version("patroni")
    target = _service_home() / f"patroni-{version}"
    if not (target / "patroni" / "__main__.py").exists():
        staging = target.with_name(f".{target.name}-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        for dist in [*_requirements("patroni", ("raft",)), *_requirements("psycopg2-binary", ())]:
            for file in dist.files or []:
                if ".." not in file.parts:  # console scripts live outside site-packages
                    (staging / file).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(str(dist.locate_file(file)), staging / file)
        _readable_by_all(staging)
        try:
            staging.rename(target)
        except OSError:  # another process copied it first
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _requirements(name: str, extras: tuple[str, ...]) -> list[importlib.metadata.Distribution]:
    """`name` and what it requires with `extras`, as installed here."""
    found: dict[str, importlib.metadata.Distribution] = {}
    todo = [(name, extras)]
    while todo:
        wanted, wanted_extras = todo.pop()
        dist = importlib.metadata.distribution(wanted)
        key = dist.metadata["Name"].lower()
        if key in found:
            continue
        found[key] = dist
        for requirement in map(Requirement, dist.requires or []):
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in (*wanted_extras, "")):
                todo.append((requirement.name, tuple(requirement.extras)))
    return list(found.values())


def _service_python() -> str:
    """An interpreter the service user can run: the system's Python 3.11."""
    for candidate in ("/usr/bin/python3.11", "/usr/local/bin/python3.11"):
        if os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("Patroni runs as a service user under root and needs /usr/bin/python3.11 for it")


@dataclass(frozen=True)
class PatroniCluster:
    """`ports`: PostgreSQL's port on each node; `patroni_port`: the first of five more (each
    node's REST API, each node's Raft, the witness's Raft)."""

    data_dir: Path
    ports: tuple[int, ...]
    patroni_port: int
    database: str = "payments"

    @property
    def home(self) -> Path:
        """The service user's folder for every node's data, Raft log and configuration."""
        return PostgresServer(self.data_dir, self.ports[0]).cluster_dir

    def rest_port(self, node: int) -> int:
        return self.patroni_port + node

    def raft_port(self, node: int) -> int:
        """node NODES is the witness."""
        return self.patroni_port + NODES + node

    def node_server(self, node: int) -> PostgresServer:
        """The node's PostgreSQL as a plain server: its port, binaries and psql."""
        return PostgresServer(self.home / f"node{node}", self.ports[node], self.database)

    def initialize(self) -> None:
        home = self.home
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        for node in range(NODES):
            (home / f"node{node}.yml").write_text(yaml.safe_dump(self._node_config(node)))
        (home / "witness.yml").write_text(yaml.safe_dump(self._witness_config()))
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            for path in [home, *home.glob("*.yml")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def _raft(self, me: int) -> dict[str, object]:
        peers = [f"127.0.0.1:{self.raft_port(n)}" for n in range(NODES + 1) if n != me]
        return {
            "data_dir": str(self.home / f"raft{me}"),
            "self_addr": f"127.0.0.1:{self.raft_port(me)}",
            "partner_addrs": peers,
        }

    def _node_config(self, node: int) -> dict[str, object]:
        server, rest, user = self.node_server(node), f"127.0.0.1:{self.rest_port(node)}", {"username": "postgres"}
        local = f"127.0.0.1:{self.ports[node]}"
        return {
            "scope": "payments",
            "name": f"node{node}",
            "log": {"level": "WARNING"},
            "restapi": {"listen": rest, "connect_address": rest},
            "raft": self._raft(node),
            "bootstrap": {
                "dcs": {
                    "ttl": TTL_SECONDS,
                    "loop_wait": LOOP_WAIT_SECONDS,
                    "retry_timeout": 5,
                    "primary_start_timeout": 0,
                    "synchronous_mode": True,
                    "postgresql": {"use_pg_rewind": True, "parameters": {"max_connections": 200}},
                },
                "initdb": [{"encoding": "UTF8"}, {"auth": "trust"}, {"username": "postgres"}],
            },
            "postgresql": {
                "listen": local,
                "connect_address": local,
                "data_dir": str(self.home / f"node{node}"),
                "bin_dir": str(server.bin_path),
                "pgpass": str(self.home / f"node{node}.pgpass"),
                "authentication": {"superuser": user, "replication": user, "rewind": user},
                "parameters": {"unix_socket_directories": "", "shared_preload_libraries": "pg_stat_statements"},
                "pg_hba": ["host all all 127.0.0.1/32 trust", "host replication all 127.0.0.1/32 trust"],
            },
        }

    def _witness_config(self) -> dict[str, object]:
        return {"raft": self._raft(NODES)}

    def _python(self) -> tuple[str, dict[str, str]]:
        if self.run_as is None:
            return sys.executable, dict(os.environ)
        return _service_python(), {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(_service_python_path())}

    def node_command(self, node: int) -> tuple[list[str], dict[str, str]]:
        python, env = self._python()
        return [python, "-m", "patroni", str(self.home / f"node{node}.yml")], env

    def witness_command(self) -> tuple[list[str], dict[str, str]]:
        python, env = self._python()
        main = "import sys; from patroni.raft_controller import main; sys.exit(main())"
        return [python, "-c", main, str(self.home / "witness.yml")], env

    @property
    def run_as(self) -> str | None:
        return PostgresServer(self.data_dir, self.ports[0]).run_as

    def roles(self) -> dict[int, str]:
        """Each answering node's role by its REST API (`primary`, `replica`); a node down is absent."""
        found = {}
        for node in range(NODES):
            try:
                answer = httpx.get(f"http://127.0.0.1:{self.rest_port(node)}/patroni", timeout=2)
                found[node] = str(answer.json().get("role"))
            except (httpx.HTTPError, ValueError):
                continue
        return found

    def primary(self) -> int | None:
        """The node whose REST API says it leads (GET /primary answers 200 there only)."""
        for node in range(NODES):
            try:
                if httpx.get(f"http://127.0.0.1:{self.rest_port(node)}/primary", timeout=2).status_code == 200:
                    return node
            except httpx.HTTPError:
                continue
        return None

    def ready(self) -> bool:
        """A primary serves queries and the other node streams from it as its synchronous standby."""
        node = self.primary()
        if node is None or not self.node_server(node).accepts_queries():
            return False
        try:
            cluster = httpx.get(f"http://127.0.0.1:{self.rest_port(node)}/cluster", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            return False
        members = cluster.get("members", [])
        return any(m.get("role") == "sync_standby" and m.get("state") == "streaming" for m in members)


def patroni_cluster(settings: Settings) -> PatroniCluster:
    """The dev stack's pair (`PAYMENTS_POSTGRES_STANDBY=true`)."""
    ports = (settings.postgres_port, settings.postgres_standby_port)
    return PatroniCluster(Path(settings.devstack_dir) / "patroni", ports, settings.patroni_port)
