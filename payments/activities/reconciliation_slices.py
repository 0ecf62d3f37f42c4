"""Reading one of Stripe's lists over a run's window as several slices of its `created` range at
once.

A list is read a page (100 objects) at a time, each page after the last object of the one before:
one chain of requests, each waiting on the last, about 12 ms a page here whatever the CPU has
left. Cut into slices, half-open in whole seconds (`created[gte]` its start, `created[lt]` the next
one's: an object falls in exactly one), the window is read by one chain per slice, all at once.
Slice 0 is the oldest; a larger index is a later part of the window. What a run may read a second
is still bounded by its Stripe read budget (stripe_reads.StripeReads), not by the slices.

The cursor an activity hands to the next names each slice not finished: its index, its range and
the last object it read."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeGuard

Page = Mapping[str, Any]  # a list page as Stripe answers it: `data`, `has_more`
# A slice starts no page after this long: paced by its read budget (stripe_reads), an activity
# still hands its cursor back well within its start-to-close (workflows/policies.RECONCILE_PAGE).
READING_SECONDS = 20.0


@dataclasses.dataclass(frozen=True)
class Slice:
    index: int
    gte: int
    lt: int
    after: str | None = None  # the last object read: the next page starts after it


def window(start: datetime, end: datetime, margin: timedelta) -> tuple[int, int]:
    """A run's window widened by its margin either side, as `created[gte]` and `created[lt]`."""
    return int((start - margin).timestamp()), int((end + margin).timestamp())


def split(gte: int, lt: int, count: int) -> list[Slice]:
    """[gte, lt) in `count` slices of whole seconds (fewer when the range is shorter)."""
    bounds = sorted({gte + (lt - gte) * i // count for i in range(count)} | {lt})
    return [Slice(i, start, end) for i, (start, end) in enumerate(itertools.pairwise(bounds))]


def to_cursor(slices: list[Slice]) -> str | None:
    """The slices left, as a cursor (None: every slice is read)."""
    return json.dumps([[s.index, s.gte, s.lt, s.after] for s in slices]) if slices else None


def from_cursor(cursor: str) -> list[Slice]:
    return [Slice(int(i), int(gte), int(lt), after) for i, gte, lt, after in json.loads(cursor)]


def is_cursor(cursor: str | None) -> TypeGuard[str]:
    """A cursor of slices, not one object id (a run started before slices, mid-list)."""
    return cursor is not None and cursor.startswith("[")


def named_in(cursor: str | None) -> tuple[str, list[Slice]]:
    """A page cursor's pass name before its slices (`payments|`, or "") and the slices it names;
    ("", []) for a cursor that names none."""
    prefix, bracket, rest = (cursor or "").partition("[")
    return (prefix, from_cursor(bracket + rest)) if bracket else ("", [])


def apart(cursor: str | None) -> list[str]:
    """A page cursor naming slices (`[…]`, or after a pass's name: `payments|[…]`) as one cursor
    per slice, each for an activity of its own; [] for any other cursor."""
    prefix, parts = named_in(cursor)
    return [f"{prefix}{to_cursor([part])}" for part in parts]


def together(cursors: list[str | None]) -> str | None:
    """The cursors the activities of `apart` returned, as one: the slices left (from where each
    got to), or, once every slice is read, where each said the phase goes next (the same for all)."""
    left: list[Slice] = []
    prefix, after = "", set()
    for cursor in cursors:
        head, parts = named_in(cursor)
        if parts:
            prefix = head
            left += parts
        else:
            after.add(cursor)
    if left:
        return prefix + str(to_cursor(sorted(left, key=lambda part: part.index)))
    (next_cursor,) = after
    return next_cursor


async def read(
    slices: list[Slice],
    list_page: Callable[[Slice], Awaitable[Page]],
    check: Callable[[Slice, list[Any]], Awaitable[None]],
    pages: int,
) -> list[Slice]:
    """Up to `pages` pages of each slice (none started after READING_SECONDS), the slices at once,
    each listing its next page while it checks one; returns the slices left, each where it got to.
    An error in one cancels the rest: the activity is retried from its cursor (checking a page
    again is idempotent)."""
    until = time.monotonic() + READING_SECONDS

    async def chain(part: Slice) -> Slice | None:
        listing = asyncio.ensure_future(list_page(part))
        try:
            for n in itertools.count(1):
                listed = await listing
                data = listed["data"]
                after = str(data[-1]["id"]) if listed.get("has_more") and data else None
                more = after is not None and n < pages and time.monotonic() < until
                if more:
                    listing = asyncio.ensure_future(list_page(dataclasses.replace(part, after=after)))
                await check(part, data)
                if after is None:
                    return None
                part = dataclasses.replace(part, after=after)
                if not more:
                    break
            return part
        finally:
            listing.cancel()  # an error while checking leaves no listing behind

    chains = [asyncio.ensure_future(chain(part)) for part in slices]
    try:
        left = await asyncio.gather(*chains)
    finally:
        for running in chains:
            running.cancel()
    return [part for part in left if part is not None]
