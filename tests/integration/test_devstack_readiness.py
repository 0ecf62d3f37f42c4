"""`make dev` waits until each service serves, not until its port opens: PostgreSQL answers
"starting up" for a while after it listens, Redis answers LOADING while it reads its file."""

import signal
import socket
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from devstack.ports import is_listening, wait_until
from devstack.postgres import PostgresServer
from devstack.redis import RedisServer
from devstack.temporal import TemporalDevServer
from payments.config.ports import free_port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections but never answers, like a server still starting."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_an_open_port_is_not_a_ready_service(silent_port: int, tmp_path: Path) -> None:
    assert is_listening(silent_port)
    probes = (
        PostgresServer(tmp_path / "pg", silent_port).accepts_queries,
        RedisServer(tmp_path / "redis", silent_port).answers_ping,
        lambda: TemporalDevServer(tmp_path / "t.db", silent_port, free_port(), "").serves("default"),
    )
    with ThreadPoolExecutor(len(probes)) as pool:  # each probe waits out its own timeout: at once
        answers = [pool.submit(probe) for probe in probes]
        assert [answer.result() for answer in answers] == [False, False, False]


def test_waiting_for_postgres_that_starts_late_returns_once_it_answers_a_query(service_tmp: Path) -> None:
    server = PostgresServer(service_tmp / "postgres", free_port())
    server.initialize()
    with ThreadPoolExecutor(1) as pool:
        ready = pool.submit(wait_until, server.accepts_queries, "PostgreSQL did not get ready", 120)
        process = subprocess.Popen(server.command(), user=server.run_as, stdout=subprocess.DEVNULL)
        try:
            ready.result()
            server.create_database()  # what failed when `make dev` only waited for the port
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(30)
            server.discard()
