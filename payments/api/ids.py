"""Ids the API gives the records it creates (users, merchants, webhook endpoints)."""

from __future__ import annotations

import uuid


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"
