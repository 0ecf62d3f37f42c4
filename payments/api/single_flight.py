"""Identical requests in flight in one API process share one call.

A client that times out and sends its payment again, or a storm of retries on one key, would
otherwise send one update per request to the same workflow, and Temporal refuses those past its
limit of updates in flight on one workflow (RESOURCE_EXHAUSTED: our 503). Shared, the storm costs
one update: the first request makes the call, and the others wait on it and answer from its result
as replays. A follower whose client gives up does not cancel the call, nor does the first request's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """One per API process (one event loop: no lock needed)."""

    def __init__(self) -> None:
        self._calls: dict[Hashable, asyncio.Task[T]] = {}

    async def run(self, key: Hashable, call: Callable[[], Coroutine[Any, Any, T]]) -> tuple[T, bool]:
        """The result of the key's call in flight, or of a new one; and whether it was another's."""
        task = self._calls.get(key)
        joined = task is not None
        if task is None:
            task = asyncio.ensure_future(call())
            self._calls[key] = task
            task.add_done_callback(lambda done: self._landed(key, done))
        return await asyncio.shield(task), joined

    def _landed(self, key: Hashable, task: asyncio.Task[T]) -> None:
        del self._calls[key]
        if not task.cancelled():
            task.exception()  # retrieved: a call whose waiters all gave up is not logged as unhandled
