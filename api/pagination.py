"""Keyset cursors for newest-first lists: opaque to clients, stable while new rows arrive."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from api.errors import ApiError


def encode_cursor(created_at: datetime, row_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at.isoformat(), row_id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, row_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(created), str(row_id)
    except (ValueError, TypeError) as exc:
        raise ApiError("The cursor is not one this API returned.") from exc
