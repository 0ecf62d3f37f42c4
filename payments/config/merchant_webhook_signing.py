"""Merchant webhook signatures: `Payments-Signature: t=<unix>,v1=<hex>`, each v1 an HMAC-SHA256 of
`"<t>.<body>"` under one active secret (two during a rotation). The worker signs; `payments
webhook-listen` (and a merchant, with the README's few lines) verifies."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

HEADER = "Payments-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
TOLERANCE_SECONDS = 300  # a receiver refuses a timestamp further off than this (replays)


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _hmac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(body: bytes, active_secrets: Iterable[str], timestamp: int) -> str:
    return ",".join([f"t={timestamp}", *(f"v1={_hmac(secret, timestamp, body)}" for secret in active_secrets)])


def verify(header: str, body: bytes, secret: str, now: float, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """Whether one of the header's v1 signatures is `secret`'s over this body, at a timestamp
    within `tolerance` seconds of `now`."""
    pairs = [item.partition("=") for item in header.split(",")]
    timestamps = [value for key, _, value in pairs if key.strip() == "t"]
    if len(timestamps) != 1 or not timestamps[0].isdigit() or abs(now - int(timestamps[0])) > tolerance:
        return False
    expected = _hmac(secret, int(timestamps[0]), body)
    return any(key.strip() == "v1" and hmac.compare_digest(value, expected) for key, _, value in pairs)
