"""Identical requests in flight share one call: its result, its error, and no one's cancellation."""

import asyncio

import pytest

from payments.api.single_flight import SingleFlight


class Call:
    """A call that runs until released, counting how often it was made. It starts after every
    request already scheduled has arrived (the event loop runs them in order)."""

    def __init__(self) -> None:
        self.made = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self) -> str:
        self.made += 1
        self.started.set()
        await self.release.wait()
        return f"answer {self.made}"


async def test_concurrent_calls_with_one_key_make_one_call_and_share_its_result() -> None:
    flights: SingleFlight[str] = SingleFlight()
    call = Call()
    waiting = [asyncio.ensure_future(flights.run("key", call)) for _ in range(50)]
    await call.started.wait()
    call.release.set()
    results = await asyncio.gather(*waiting)
    assert call.made == 1
    assert [joined for _, joined in results] == [False] + [True] * 49
    assert {result for result, _ in results} == {"answer 1"}


async def test_other_keys_and_later_requests_make_their_own_calls() -> None:
    flights: SingleFlight[str] = SingleFlight()
    call = Call()
    call.release.set()
    assert await asyncio.gather(flights.run("a", call), flights.run("b", call)) == [
        ("answer 1", False),
        ("answer 2", False),
    ]
    assert await flights.run("a", call) == ("answer 3", False)  # the first call had landed


async def test_an_error_reaches_every_request_and_the_next_request_calls_again() -> None:
    flights: SingleFlight[str] = SingleFlight()
    started, release = asyncio.Event(), asyncio.Event()

    async def failing() -> str:
        started.set()
        await release.wait()
        raise LookupError("refused")

    waiting = [asyncio.ensure_future(flights.run("key", failing)) for _ in range(3)]
    await started.wait()
    release.set()
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(outcome, LookupError) for outcome in outcomes)
    call = Call()
    call.release.set()
    assert await flights.run("key", call) == ("answer 1", False)


async def test_a_request_that_gives_up_cancels_neither_the_call_nor_the_others() -> None:
    flights: SingleFlight[str] = SingleFlight()
    call = Call()
    first = asyncio.ensure_future(flights.run("key", call))
    second = asyncio.ensure_future(flights.run("key", call))
    await call.started.wait()
    first.cancel()  # the request that made the call: its client went away
    with pytest.raises(asyncio.CancelledError):
        await first
    call.release.set()
    assert await second == ("answer 1", True)
    assert call.made == 1
