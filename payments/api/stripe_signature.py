"""Stripe-Signature verification, shared by the card guard (which exempts a signed event) and the
webhook route: the HMAC must match and the timestamp must lie within the tolerance either way
(Stripe's own check refuses only old timestamps; one from the future is as suspect)."""

from __future__ import annotations

import time

import stripe

TOLERANCE_SECONDS = 300


def _timestamp(header: str) -> int:
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            return int(value)
    return 0


def signed_by_stripe(payload: bytes, header: str, secret: str) -> bool:
    try:
        stripe.WebhookSignature.verify_header(payload.decode("utf-8"), header, secret, TOLERANCE_SECONDS)
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError):
        return False
    return _timestamp(header) <= time.time() + TOLERANCE_SECONDS
