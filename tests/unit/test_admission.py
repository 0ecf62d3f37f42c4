"""The admission gate's arithmetic: a bound on what is in flight, freed on every way out; a repeat of a
payment started joins it, and the database is asked only past the bound."""

from collections.abc import Awaitable, Callable

import pytest

from payments.api.admission import Admission
from payments.api.errors import ServiceUnavailable


class Rows:
    """`started` for the gate: which payments the database holds, and how often it was asked."""

    def __init__(self, *held: str) -> None:
        self.held, self.asked = set(held), 0

    def of(self, payment: str) -> Callable[[], Awaitable[bool]]:
        async def started() -> bool:
            self.asked += 1
            return payment in self.held

        return started


async def test_past_the_limit_is_refused_and_a_finished_one_frees_its_place() -> None:
    gate, rows = Admission(limit=2), Rows()
    async with gate.admit("a", rows.of("a")), gate.admit("b", rows.of("b")):
        with pytest.raises(ServiceUnavailable) as refused:
            async with gate.admit("c", rows.of("c")):
                pass
        assert refused.value.headers == {"Retry-After": "1"}
        assert gate.in_flight == 2  # a refusal takes no place
        assert rows.asked == 1  # asked past the bound only
    assert gate.in_flight == 0
    async with gate.admit("c", rows.of("c")):
        assert gate.in_flight == 1
    assert rows.asked == 1


async def test_a_failed_request_frees_its_place() -> None:
    gate, rows = Admission(limit=1), Rows()
    with pytest.raises(RuntimeError):
        async with gate.admit("a", rows.of("a")):
            raise RuntimeError("Temporal said no")
    async with gate.admit("b", rows.of("b")):
        assert gate.in_flight == 1


async def test_a_repeat_of_a_payment_in_flight_joins_it_past_the_bound_without_a_read() -> None:
    gate, rows = Admission(limit=1), Rows()
    async with gate.admit("a", rows.of("a")), gate.admit("a", rows.of("a")), gate.admit("a", rows.of("a")):
        assert gate.in_flight == 1
    assert rows.asked == 0
    assert gate.in_flight == 0


async def test_past_the_bound_a_payment_the_database_holds_joins_and_another_is_refused() -> None:
    gate, rows = Admission(limit=1), Rows("started elsewhere")
    async with gate.admit("a", rows.of("a")):
        async with gate.admit("started elsewhere", rows.of("started elsewhere")):
            assert gate.in_flight == 1
        with pytest.raises(ServiceUnavailable):
            async with gate.admit("new", rows.of("new")):
                pass
    assert rows.asked == 2
