"""`heartbeating`: heartbeats while a call waits, none once it has answered, and a cancelled
activity cancels the call (Temporal's own activity environment, no server)."""

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from temporalio import activity
from temporalio.testing import ActivityEnvironment

from payments.activities.heartbeat import heartbeating


class Beats:
    """The heartbeats an activity sent; `third` is set at the third."""

    def __init__(self) -> None:
        self.count = 0
        self.third = asyncio.Event()

    def environment(self) -> ActivityEnvironment:
        env = ActivityEnvironment()
        env.on_heartbeat = self.beat
        return env

    def beat(self, *_details: object) -> None:
        self.count += 1
        if self.count == 3:
            self.third.set()


def answering_when(answer: asyncio.Event, cancelled: list[bool] | None = None) -> Callable[[], Awaitable[str]]:
    @activity.defn(name="answers")
    async def answers() -> str:
        async def call() -> str:
            try:
                await answer.wait()
            except asyncio.CancelledError:
                if cancelled is not None:
                    cancelled.append(True)
                raise
            return "answered"

        return await heartbeating(call(), every=0.01)

    return answers


async def test_a_call_is_heartbeated_while_it_waits_and_not_after_it_answers() -> None:
    beats = Beats()
    async with asyncio.timeout(5):  # a call never heartbeated would wait forever
        assert await beats.environment().run(answering_when(beats.third)) == "answered"
    await asyncio.sleep(0.05)  # five more periods: a timer left running would beat again
    assert beats.count == 3


async def test_a_quick_call_sends_no_heartbeat() -> None:
    beats, answered = Beats(), asyncio.Event()
    answered.set()
    assert await beats.environment().run(answering_when(answered)) == "answered"
    await asyncio.sleep(0.05)
    assert beats.count == 0


async def test_a_cancelled_activity_cancels_the_call_and_its_heartbeats() -> None:
    beats, cancelled = Beats(), list[bool]()
    env = beats.environment()
    running: asyncio.Future[str] = asyncio.ensure_future(env.run(answering_when(asyncio.Event(), cancelled)))
    async with asyncio.timeout(5):
        await beats.third.wait()  # the call is waiting, heartbeated
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert cancelled == [True]  # the call itself was cancelled, not left running
    count = beats.count
    await asyncio.sleep(0.05)
    assert beats.count == count
