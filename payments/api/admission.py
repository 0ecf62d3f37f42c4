"""Admission: how many payment inits one API process lets wait on Temporal at once.

Past the knee, payments arrive faster than the worker and Temporal finish them: each one waits
longer, clients time out and send again, workflow tasks time out and are redone, and fewer
payments complete than before. A bound on the inits in flight bounds that queue (the wait is
about in-flight / throughput): past it, a new payment is refused at once with 503 and Retry-After,
before anything is written or started, and its client sends it again with the same key. Not
bounded: confirms and cancels, which finish payments already started, and a repeat of a key whose
payment is pending, which joins that payment (the client that timed out and sent again).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from payments.api.errors import ServiceUnavailable
from payments.api.metrics import INITS_IN_FLIGHT, INITS_SHED

AT_CAPACITY = "The service is at capacity; send the payment again shortly, with the same key."


class Admission:
    """One per API process (one event loop: no lock needed)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    @contextmanager
    def admit(self) -> Iterator[None]:
        if self.in_flight >= self.limit:
            INITS_SHED.inc()
            raise ServiceUnavailable(AT_CAPACITY, retry_after=1)
        self.in_flight += 1
        INITS_IN_FLIGHT.set(self.in_flight)
        try:
            yield
        finally:
            self.in_flight -= 1
            INITS_IN_FLIGHT.set(self.in_flight)
