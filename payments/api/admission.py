"""Admission: how many payment inits one API process lets wait on Temporal at once.

Past the knee, payments arrive faster than the worker and Temporal finish them: each one waits
longer, clients time out and send again, workflow tasks time out and are redone, and fewer
payments complete than before. A bound on the inits in flight bounds that queue (the wait is
about in-flight / throughput): past it, a new payment is refused at once with 503 and Retry-After,
before anything is written or started, and its client sends it again with the same key. Not
bounded: confirms and cancels, which finish payments already started, and a repeat of a key whose
payment was started, which joins that payment (the client that timed out and sent again): one this
process is starting joins at once; past the bound, one whose row the database holds (started by
another process, or earlier). Below the bound nothing is read: a payment's init reads no row of
its own (its workflow's first step finds the key's row if there is one).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from payments.api.errors import ServiceUnavailable
from payments.api.metrics import INITS_IN_FLIGHT, INITS_SHED

AT_CAPACITY = "The service is at capacity; send the payment again shortly, with the same key."


class Admission:
    """One per API process (one event loop: no lock needed)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self._starting: set[str] = set()  # the payments (workflow ids) of the inits admitted

    @asynccontextmanager
    async def admit(self, payment: str, started: Callable[[], Awaitable[bool]]) -> AsyncIterator[None]:
        """An init of `payment` (its workflow id) within the bound, or a repeat of one started
        (`started`: whether the database holds its row, asked only past the bound)."""
        if payment in self._starting or (self.in_flight >= self.limit and await started()):
            yield
            return
        if self.in_flight >= self.limit:
            INITS_SHED.inc()
            raise ServiceUnavailable(AT_CAPACITY, retry_after=1)
        self.in_flight += 1
        self._starting.add(payment)
        INITS_IN_FLIGHT.set(self.in_flight)
        try:
            yield
        finally:
            self.in_flight -= 1
            self._starting.discard(payment)
            INITS_IN_FLIGHT.set(self.in_flight)
