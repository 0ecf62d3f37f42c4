"""The loop of the worker's background pollers (outbox relay, webhook fan-out): run a batch, and
when there was nothing to do (or a dependency failed), wait a little or until told to stop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


async def poll_until_stopped(
    batch: Callable[[], Awaitable[int]],
    stop: asyncio.Event,
    idle_seconds: float,
    transient: tuple[type[BaseException], ...],
    name: str,
) -> None:
    while not stop.is_set():
        try:
            done = await batch()
        except transient as exc:
            log.warning(f"{name}_retrying", error=type(exc).__name__)
            done = 0
        if done == 0:
            try:
                await asyncio.wait_for(stop.wait(), idle_seconds)
            except TimeoutError:
                pass
