"""Keyset cursors for newest-first lists: opaque to clients, stable while new rows arrive."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query
from sqlalchemy import Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from payments.api.errors import ApiError

INT64_MAX = 2**63 - 1  # PostgreSQL's bigint: ids and cursors beyond it are refused, not sent
Limit = Annotated[int, Query(ge=1, le=100)]  # a page's size, as every list route takes it


class InvalidCursor(ApiError):
    status, code, message = 400, "invalid_cursor", "The cursor is not one this API returned."


def encode_cursor(created_at: datetime, row_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at.isoformat(), row_id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, row_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        at = datetime.fromisoformat(created)
    except (ValueError, TypeError, binascii.Error, OverflowError):
        raise InvalidCursor() from None
    if at.tzinfo is None or not isinstance(row_id, str):
        raise InvalidCursor()  # every cursor we hand out carries its timezone and a string id
    try:
        return at.astimezone(UTC), row_id
    except OverflowError:
        raise InvalidCursor() from None  # year 1 at +14:00 or 9999 at -14:00: outside datetime's range in UTC


def int_row_id(row_id: str) -> int:
    """A cursor's row id for tables keyed by bigint."""
    if not row_id.isdigit() or int(row_id) > INT64_MAX:
        raise InvalidCursor()
    return int(row_id)


async def newest_first(
    session: AsyncSession,
    query: Select[Any],
    created: InstrumentedAttribute[datetime],
    key: InstrumentedAttribute[Any],
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[Any], str | None]:
    """One page of `query`'s rows by (created, key) descending, and the cursor of the next page."""
    if cursor:
        at, last = decode_cursor(cursor)
        bound = int_row_id(last) if key.type.python_type is int else last
        query = query.where(tuple_(created, key) < tuple_(at, bound))
    rows = (await session.execute(query.order_by(created.desc(), key.desc()).limit(limit + 1))).scalars().all()
    page = rows[:limit]
    if len(rows) <= limit:
        return page, None
    last_row = page[-1]
    return page, encode_cursor(getattr(last_row, created.key), str(getattr(last_row, key.key)))
