"""Stripe-Signature verification, shared by the card guard (which exempts a signed event) and the
webhook route: the HMAC must match and the timestamp must lie within the tolerance either way
(Stripe's own check refuses only old timestamps; one from the future is as suspect). A request's
verified signature is kept in its state, so the route does not check again what the guard checked."""

from __future__ import annotations

import time

import stripe
from starlette.types import Scope

STRIPE_WEBHOOK_PATH = "/webhooks/stripe"  # where Stripe sends our endpoint's events
TOLERANCE_SECONDS = 300
VERIFIED = "stripe_signature_verified"  # request state: (payload, header) whose signature verified


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


def request_signed_by_stripe(scope: Scope, payload: bytes, header: str, secret: str) -> bool:
    """`signed_by_stripe`, checked once per request for the same payload and header."""
    state = scope.setdefault("state", {})
    if state.get(VERIFIED) == (payload, header):
        return True
    if not signed_by_stripe(payload, header, secret):
        return False
    state[VERIFIED] = (payload, header)
    return True
