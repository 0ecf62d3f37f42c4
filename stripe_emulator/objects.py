"""Stripe objects built from Stripe's own example of each type (fixtures.json, taken from the
public stripe/openapi fixtures), so every field real Stripe returns is present with its type."""

from __future__ import annotations

import copy
import json
import secrets
import time
from functools import cache
from pathlib import Path
from typing import Any

_FIXTURES = Path(__file__).with_name("fixtures.json")


@cache
def _templates() -> dict[str, dict[str, Any]]:
    return json.loads(_FIXTURES.read_text())  # type: ignore[no-any-return]


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def build(kind: str, prefix: str, **fields: Any) -> dict[str, Any]:
    obj = copy.deepcopy(_templates()[kind])
    obj.update(id=new_id(prefix), created=int(time.time()), livemode=False)
    if "metadata" in obj:
        obj["metadata"] = {}
    obj.update(fields)
    return obj
