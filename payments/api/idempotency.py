"""What makes a create safe to repeat: a client's key, from the body or the `Idempotency-Key`
header (one of them is required), and a fingerprint of the parameters the key was first used with."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

from fastapi import Header

from payments.api.errors import IdempotencyKeyRequired
from payments.api.models import KEY_MAX_LENGTH, KEY_PATTERN

REPLAYED = {"Idempotent-Replayed": "true"}
# The 200 of a create that is a repeat: the first answer again, marked.
REPLAY_HEADER = {
    "Idempotent-Replayed": {"description": "Always `true`", "schema": {"type": "string", "enum": ["true"]}}
}

KeyHeader = Annotated[
    str | None, Header(alias="Idempotency-Key", pattern=KEY_PATTERN, min_length=1, max_length=KEY_MAX_LENGTH)
]


def required_key(in_body: str | None, in_header: str | None) -> str:
    """The body's key, else the header's; neither is refused before anything starts."""
    key = in_body or in_header
    if not key:
        raise IdempotencyKeyRequired()
    return key


def fingerprint(*parameters: object) -> str:
    """A digest of the request's parameters (a secret among them only as part of the hash)."""
    return hashlib.sha256(json.dumps(parameters).encode()).hexdigest()
