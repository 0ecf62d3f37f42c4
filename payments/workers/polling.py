"""The loop of the worker's background pollers (outbox relay, webhook fan-out): run a batch, and
unless it came back full (more is waiting), wait a little or until told to stop. A batch that was
not full has taken all there was: polling again at once would find nothing and cost a database
transaction for it (under steady traffic that was every other poll).

An idle poller waits IDLE_SECONDS: the fixed cost of each poller is about three statements per
poll, every poll (at 3 payments/s, 0.2 s cost each payment about 14 of its statements for the two
pollers; 0.5 s about 7). The price is latency: an event reaches the stream and merchant webhooks
up to 0.5 s after its commit (was 0.2 s); a full batch still polls again at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

IDLE_SECONDS = 0.5


async def poll_until_stopped(
    batch: Callable[[], Awaitable[int]],
    stop: asyncio.Event,
    idle_seconds: float,
    transient: tuple[type[BaseException], ...],
    name: str,
    full: int = 1,
) -> None:
    """`full`: the batch size at which the next batch runs at once (1: whenever there was work)."""
    while not stop.is_set():
        try:
            done = await batch()
        except transient as exc:
            log.warning(f"{name}_retrying", error=type(exc).__name__)
            done = 0
        if done < full:
            try:
                await asyncio.wait_for(stop.wait(), idle_seconds)
            except TimeoutError:
                pass
