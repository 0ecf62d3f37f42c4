"""Stripe objects built from Stripe's own example of each type (fixtures.json, taken from the
public stripe/openapi fixtures), so every field real Stripe returns is present with its type."""

from __future__ import annotations

import json
import secrets
import string
import time
from functools import cache
from pathlib import Path
from typing import Any

import orjson

_FIXTURES = Path(__file__).with_name("fixtures.json")
_ID_ALPHABET = string.digits + string.ascii_letters
_ID_BITS = 192  # far past 62**24 (about 2**143): every character, the last too, as likely as any other


@cache
def _templates() -> dict[str, bytes]:
    """Each kind's example serialized: a build loads its own copy (a deep copy cost several times more)."""
    return {kind: orjson.dumps(example) for kind, example in json.loads(_FIXTURES.read_text()).items()}


def new_id(prefix: str) -> str:
    """Stripe's shape: letters and digits mixed. Hexadecimal ids ran into 13 digits often enough
    (one in 2,000) for the API's card-number guard to refuse them. The 24 characters are the base-62
    digits of one random number: one read of the system's randomness where a choice per character
    made 24 (a twentieth of the emulator's CPU at 12 payments a second)."""
    number = secrets.randbits(_ID_BITS)
    characters = []
    for _ in range(24):
        number, digit = divmod(number, 62)
        characters.append(_ID_ALPHABET[digit])
    return f"{prefix}_{''.join(characters)}"


def build(kind: str, prefix: str, **fields: Any) -> dict[str, Any]:
    obj: dict[str, Any] = orjson.loads(_templates()[kind])
    obj.update(id=new_id(prefix), created=int(time.time()), livemode=False)
    if "metadata" in obj:
        obj["metadata"] = {}
    obj.update(fields)
    return obj
