"""Which Stripe webhooks the API answers without acting: those of a call our own workflow made."""

from __future__ import annotations

import json

import pytest

from payments.api.routes.stripe_webhooks import _our_own_move, _parsed

TX = "tx_" + "a" * 32


def _event(event_type: str, key: str | None, status: str = "requires_capture") -> bytes:
    return json.dumps(
        {
            "id": "evt_1",
            "type": event_type,
            "data": {"object": {"id": "pi_1", "status": status, "metadata": {"tx_id": TX}}},
            "request": {"id": "req_1", "idempotency_key": key},
        }
    ).encode()


@pytest.mark.parametrize(
    ("event_type", "suffix"),
    [
        ("payment_intent.amount_capturable_updated", ":authorize"),
        ("payment_intent.succeeded", ":capture"),
        ("payment_intent.canceled", ":cancel"),
    ],
)
def test_the_webhook_of_our_own_call_is_not_acted_on(event_type: str, suffix: str) -> None:
    assert _our_own_move(_parsed(_event(event_type, TX + suffix)))


@pytest.mark.parametrize("key", [None, "client-side-confirm", TX + ":capture", "tx_" + "b" * 32 + ":authorize"])
def test_an_authorization_someone_else_caused_is_acted_on(key: str | None) -> None:
    """3-D Secure's authorization comes from the customer's request: the waiting workflow needs it."""
    assert not _our_own_move(_parsed(_event("payment_intent.amount_capturable_updated", key)))
