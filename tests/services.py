"""Real services for tests: PostgreSQL and Redis from the same wheels as `make dev` (or the
servers named by PAYMENTS_DATABASE_URL / PAYMENTS_REDIS_URL), each on a free port in a temp dir."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import asyncpg
import uvicorn
from sqlalchemy.engine import make_url

from devstack.ports import wait_listening, wait_until
from devstack.postgres import PostgresServer
from devstack.redis import RedisServer
from payments.api.app import UVICORN_OPTIONS
from payments.config.ports import free_port

T = TypeVar("T")
_NO_DIGITS = str.maketrans("0123456789", "ghijklmnop")


def fresh_key() -> str:
    """A unique id with no digits (32 letters a-p): a uuid's hex digits can line up as a
    Luhn-valid 13-19 digit run, which the card-data guard rightly refuses, failing a test by chance."""
    return uuid.uuid4().hex.translate(_NO_DIGITS)


async def eventually(probe: Callable[[], Awaitable[T]], ready: Callable[[T], bool], what: str, within: float = 90) -> T:
    """Poll `probe` until `ready` holds for what it returns (returned); fail, with the last value
    seen, once `within` seconds have passed. The one way these tests wait for something."""
    deadline = time.monotonic() + within
    while not ready(value := await probe()):
        assert time.monotonic() < deadline, f"{what}: still {value!r} after {within:.0f} s"
        await asyncio.sleep(0.02)  # polling a condition with a deadline
    return value


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    process.send_signal(sig)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def embedded_postgres(tmp: Path) -> Iterator[str]:
    server = PostgresServer(tmp / "postgres", free_port())
    server.initialize()
    log = (tmp / "postgres.log").open("wb")
    process = subprocess.Popen(server.command(), user=server.run_as, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(server.accepts_queries, "PostgreSQL did not get ready", 60)
        server.create_database()
        yield server.url
    finally:
        _stop(process, signal.SIGINT)
        log.close()
        server.discard()


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A fresh database on an existing server, dropped afterwards: never touch its other data."""
    name = f"payments_test_{uuid.uuid4().hex[:12]}"
    admin = make_url(server_url).set(drivername="postgresql")

    async def run(sql: str) -> None:
        connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def embedded_redis(tmp: Path) -> Iterator[str]:
    server = RedisServer(tmp / "redis", free_port())
    process = subprocess.Popen(server.command(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_until(server.answers_ping, "Redis did not get ready", 60)
        yield server.url
    finally:
        _stop(process)


@contextmanager
def serve_in_thread(app: object) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free port in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", **UVICORN_OPTIONS))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_listening(port, "test server")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
