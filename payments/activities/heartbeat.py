"""Heartbeats while an activity waits on Stripe: if the worker dies mid-call, the server notices
within the step's heartbeat timeout and retries elsewhere, instead of after start-to-close."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from temporalio import activity

T = TypeVar("T")


async def heartbeating(call: Awaitable[T], every: float = 1.0) -> T:
    if activity.info().is_local:
        return await call  # a local activity has no heartbeat: its workflow task's timeout covers it
    task = asyncio.ensure_future(call)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every)
            if done:
                return task.result()
            activity.heartbeat()
    finally:
        task.cancel()  # the activity itself was cancelled: do not leave the call running
