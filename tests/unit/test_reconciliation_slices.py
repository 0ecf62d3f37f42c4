"""The slices a reconciliation reads Stripe's lists in: the window covered once, whatever its
length, and a cursor that gives each slice back as it was."""

import asyncio
import itertools
from typing import Any

import pytest

from payments.activities import reconciliation_slices as slices
from payments.activities.reconciliation_slices import Slice


@pytest.mark.parametrize(("gte", "lt", "count"), [(1000, 4600, 4), (1000, 1003, 4), (1000, 1001, 1), (7, 1000, 3)])
def test_slices_cover_the_window_once_oldest_first(gte: int, lt: int, count: int) -> None:
    parts = slices.split(gte, lt, count)
    assert parts[0].gte == gte and parts[-1].lt == lt
    assert all(a.lt == b.gte for a, b in itertools.pairwise(parts))  # half-open, no gap
    assert all(p.gte < p.lt for p in parts) and len(parts) == min(count, lt - gte)
    assert [p.index for p in parts] == list(range(len(parts)))


def test_a_cursor_gives_the_slices_back() -> None:
    parts = [Slice(1, 10, 20, "evt_1"), Slice(3, 30, 40)]
    cursor = slices.to_cursor(parts)
    assert cursor is not None and slices.is_cursor(cursor)
    assert slices.from_cursor(cursor) == parts
    assert slices.to_cursor([]) is None
    assert not slices.is_cursor("evt_1") and not slices.is_cursor(None)


PAGES = {0: 5, 1: 2, 2: 0}  # of each of three slices


async def _list_page(part: Slice) -> dict[str, Any]:
    n = int(part.after.split("_")[1]) + 1 if part.after else 0
    data = [{"id": f"{part.index}_{n}"}] if n < PAGES[part.index] else []
    return {"data": data, "has_more": n + 1 < PAGES[part.index]}


def test_each_slice_reads_its_pages_in_order_and_stops_where_told() -> None:
    """At most 3 pages of each slice this activity."""
    checked: list[tuple[int, list[Any]]] = []

    async def check(part: Slice, data: list[Any]) -> None:
        checked.append((part.index, [o["id"] for o in data]))

    left = asyncio.run(slices.read(slices.split(0, 30, 3), _list_page, check, pages=3))

    assert left == [Slice(0, 0, 10, "0_2")]
    assert [ids for i, ids in checked if i == 0] == [["0_0"], ["0_1"], ["0_2"]]
    assert [ids for i, ids in checked if i == 1] == [["1_0"], ["1_1"]]
    assert [ids for i, ids in checked if i == 2] == [[]]


def test_no_page_is_started_once_reading_time_is_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paced by its read budget, an activity hands back its cursor before its timeout."""
    monkeypatch.setattr(slices, "READING_SECONDS", 0.0)
    checked: list[int] = []

    async def check(part: Slice, data: list[Any]) -> None:
        checked.append(part.index)

    left = asyncio.run(slices.read(slices.split(0, 30, 3), _list_page, check, pages=10))

    assert sorted(checked) == [0, 1, 2]
    assert left == [Slice(0, 0, 10, "0_0"), Slice(1, 10, 20, "1_0")]


@pytest.mark.parametrize("prefix", ["", "payments|"])
def test_a_cursor_apart_and_back_together_names_the_slices_left(prefix: str) -> None:
    """Each slice to an activity of its own, and their cursors back as one: the slices not
    finished, from where each got to, in order."""
    parts = [Slice(0, 10, 20, "evt_0"), Slice(1, 20, 30), Slice(2, 30, 40, "evt_2")]
    each = slices.apart(f"{prefix}{slices.to_cursor(parts)}")
    assert [slices.from_cursor(c.removeprefix(prefix)) for c in each] == [[p] for p in parts]

    finished = "transfers" if prefix else None  # where each activity says the phase goes next
    went_on = [
        f"{prefix}{slices.to_cursor([Slice(2, 30, 40, 'evt_9')])}",
        finished,
        f"{prefix}{slices.to_cursor([Slice(0, 10, 20, 'evt_5')])}",
    ]
    assert (
        slices.together(went_on)
        == f"{prefix}{slices.to_cursor([Slice(0, 10, 20, 'evt_5'), Slice(2, 30, 40, 'evt_9')])}"
    )
    assert slices.together([finished, finished, finished]) == finished


@pytest.mark.parametrize("cursor", [None, "evt_1", "payments", "transfers|2026-12-01T00:00:00+00:00|po_1", "unpaid|7"])
def test_a_cursor_of_no_slices_is_not_taken_apart(cursor: str | None) -> None:
    assert slices.apart(cursor) == []
