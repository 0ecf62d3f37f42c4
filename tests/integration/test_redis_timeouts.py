"""A Redis that accepts connections but never answers costs a caller a second, not a hang: the
outbox relay and the cache catch RedisError and go on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.exceptions import RedisError

from payments.config.redis import TIMEOUT_SECONDS, redis_client


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """A TCP server that takes connections, reads what it is sent and never writes a byte."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(4096):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"redis://127.0.0.1:{port}/0"


async def test_a_redis_that_never_answers_raises_a_redis_error_within_the_timeout(silent_server: str) -> None:
    client = redis_client(silent_server)
    try:
        with pytest.raises(RedisError):
            # the outer bound only stops a hang from hanging the suite: without the client's own
            # timeout this raises asyncio.TimeoutError, which is not a RedisError
            await asyncio.wait_for(client.xadd("payments.events", {"k": "v"}), 20 * TIMEOUT_SECONDS)
    finally:
        await client.aclose()
