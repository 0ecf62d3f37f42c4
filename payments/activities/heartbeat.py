"""Heartbeats while an activity waits on Stripe: if the worker dies mid-call, the server notices
within the step's heartbeat timeout and retries elsewhere, instead of after start-to-close."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from temporalio import activity

T = TypeVar("T")


async def heartbeating(call: Awaitable[T], every: float = 1.0) -> T:
    """The call awaited in the activity's own task, a timer heartbeating every `every` seconds
    until it answers: no task or wait of its own per call, which most calls (answered well within
    the first second) would pay for nothing. The timer runs in the activity's context, so
    `activity.heartbeat` knows its activity; a cancelled activity cancels the call itself."""
    if activity.info().is_local:
        return await call  # a local activity has no heartbeat: its workflow task's timeout covers it
    loop = asyncio.get_running_loop()
    timer: asyncio.TimerHandle

    def beat() -> None:
        nonlocal timer
        timer = loop.call_later(every, beat)  # first: a heartbeat that raises must not end the beats
        activity.heartbeat()

    timer = loop.call_later(every, beat)
    try:
        return await call
    finally:
        timer.cancel()
