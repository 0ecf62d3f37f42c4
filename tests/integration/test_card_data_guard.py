"""A card number anywhere the application looks is refused unread: not stored, not logged. The
vectors are the ones an attacker tried: other encodings, escapes, separators, headers, the path."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import stripe
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from payments.api.card_data import MAX_BODY_BYTES
from payments.config.settings import Settings
from stripe_emulator.webhooks import signature_header
from tests.integration.conftest import Parties
from tests.services import fresh_key

PAN = "4242424242424242"
SPELLINGS = {
    "plain": PAN,
    "spaced": "4242 4242 4242 4242",
    "dots": "4242.4242.4242.4242",
    "no-break-spaces": "4242\u00a04242\u00a04242\u00a04242",
    "double-spaces": "4242  4242  4242  4242",
    "tabs": "4242\t4242\t4242\t4242",
    "slashes": "4242/4242/4242/4242",
    "underscores": "4242_4242_4242_4242",
    "en-dash": "4242\u20134242\u20134242\u20134242",
    "fullwidth": "\uff14\uff12\uff14\uff12" * 4,
    "glued-to-letters": f"Ada{PAN}x",
}


async def _users_named_like_a_card(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT name FROM users WHERE name ~ '[0-9]{4}'"))
        return sum(1 for (name,) in rows if "4242" in name.replace(" ", ""))


@pytest.mark.parametrize("spelling", SPELLINGS.values(), ids=SPELLINGS.keys())
async def test_card_numbers_are_refused_however_they_are_typed(
    api: httpx.AsyncClient, auth, engine: AsyncEngine, log_file: Path, spelling: str
) -> None:
    marker = f"guard-{fresh_key()}"
    headers = auth("operator") | {"x-request-id": marker}
    response = await api.post("/users", json={"name": spelling}, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "card_data_rejected"
    assert await _users_named_like_a_card(engine) == 0
    logs = log_file.read_text()
    refusals = [json.loads(line) for line in logs.splitlines() if marker in line]
    assert any(r["event"] == "card_data_rejected" for r in refusals)  # the refusal was logged ...
    assert PAN not in logs and "4242 4242" not in logs  # ... without the number


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Ada", "extra": {"deep": [PAN]}},
        {"name": "Ada", "amount": int(PAN)},
        {"name": "Ada", PAN: "as a key"},
    ],
    ids=["nested-unknown-field", "number", "key"],
)
async def test_card_numbers_are_refused_anywhere_in_the_json(api: httpx.AsyncClient, auth, body: dict) -> None:
    response = await api.post("/users", json=body, headers=auth("operator"))
    assert response.status_code == 400 and response.json()["error"]["code"] == "card_data_rejected"


async def test_a_json_escape_spelling_the_digits_is_refused(api: httpx.AsyncClient, auth) -> None:
    raw = ('{"name": "Ada ' + "".join(f"\\u{ord(d):04x}" for d in PAN) + '"}').encode()
    response = await api.post("/users", content=raw, headers=auth("operator") | {"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "card_data_rejected"


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({"name": PAN}).encode("utf-16"),
        json.dumps({"name": PAN}).encode("utf-16-le"),
        json.dumps({"name": PAN}).encode("utf-32"),
        b"\xef\xbb\xbf" + json.dumps({"name": "".join(f"\\u{ord(d):04x}" for d in PAN)}).encode(),
        json.dumps({"name": "Ren\u00e9"}, ensure_ascii=False).encode("latin-1"),
    ],
    ids=["utf-16-bom", "utf-16-le", "utf-32", "utf-8-bom-escaped", "latin-1"],
)
async def test_a_body_that_is_not_utf8_json_is_415_and_stores_nothing(
    api: httpx.AsyncClient, auth, engine: AsyncEngine, raw: bytes
) -> None:
    headers = auth("operator") | {"content-type": "application/json"}
    response = await api.post("/users", content=raw, headers=headers)
    assert response.status_code == 415, response.text
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert await _users_named_like_a_card(engine) == 0


async def test_a_card_number_as_idempotency_key_header_is_refused(api: httpx.AsyncClient, auth) -> None:
    body = {"user_id": "usr_x", "merchant_id": "mer_x", "amount": 100, "currency": "usd", "card_token": "pm_card_visa"}
    headers = auth("user", "usr_x") | {"Idempotency-Key": "4242-4242-4242-4242"}
    response = await api.post("/payments/init", json=body, headers=headers)
    assert response.status_code == 400 and response.json()["error"]["code"] == "card_data_rejected"


@pytest.mark.parametrize("where", ["path", "query", "encoded-query"])
async def test_card_numbers_in_the_path_or_query_are_refused(api: httpx.AsyncClient, auth, where: str) -> None:
    url = {
        "path": f"/payments/tx_{PAN}",
        "query": f"/healthz?card={PAN}",
        "encoded-query": "/healthz?card=4242%C2%A04242%C2%A04242%C2%A04242",
    }[where]
    response = await api.get(url, headers=auth("operator"))
    assert response.status_code == 400 and response.json()["error"]["code"] == "card_data_rejected"


async def test_ids_that_merely_contain_digits_are_accepted(api: httpx.AsyncClient, auth) -> None:
    response = await api.post("/users", json={"name": "req_ddb18e28ad794675845404034f911a70"}, headers=auth("operator"))
    assert response.status_code == 201


@pytest.mark.parametrize("path", ["/healthz", "/users", "/payments/init", "/webhooks/stripe", "/codec/decode"])
async def test_json_nested_a_thousand_deep_is_400_on_every_route(api: httpx.AsyncClient, auth, path: str) -> None:
    raw = b"[" * 1000 + b"]" * 1000
    headers = auth("operator") | {"content-type": "application/json"}
    response = await api.post(path, content=raw, headers=headers)
    assert response.status_code == 400 and response.json()["error"]["code"] == "nested_too_deep"


async def test_a_signed_stripe_event_holding_a_phone_number_is_not_lost(
    api: httpx.AsyncClient, stack_settings: Settings
) -> None:
    """A 13-digit Luhn-valid phone number in a real event must not make us drop the event."""
    phone = "4155550100000"
    assert phone.isdigit() and len(phone) == 13
    event_id = f"evt_{fresh_key()}"
    payload = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "payment_intent.succeeded",
            "api_version": "2026-10-28",
            "created": int(time.time()),
            "data": {
                "object": {
                    "id": "pi_x",
                    "object": "payment_intent",
                    "status": "succeeded",
                    "shipping": {"phone": phone},
                }
            },
        }
    )
    secret = stack_settings.stripe_webhook_secret.get_secret_value()
    signed = await api.post(
        "/webhooks/stripe", content=payload, headers={"Stripe-Signature": signature_header(payload, secret)}
    )
    assert signed.status_code == 200 and signed.json()["duplicate"] is False
    forged = await api.post(
        "/webhooks/stripe", content=payload, headers={"Stripe-Signature": signature_header(payload, "whsec_x")}
    )
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "card_data_rejected"


async def test_a_stripe_event_s_signature_is_checked_once(
    api: httpx.AsyncClient, stack_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard (which exempts a signed event from the card scan) and the route share one check."""
    checked: list[str] = []
    verify_header = stripe.WebhookSignature.verify_header

    def counted(payload: str, header: str, secret: str, tolerance: int | None = None) -> bool:
        checked.append(header)
        return verify_header(payload, header, secret, tolerance)

    monkeypatch.setattr(stripe.WebhookSignature, "verify_header", counted)
    payload = json.dumps(
        {
            "id": f"evt_{fresh_key()}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "api_version": "2026-10-28",
            "created": int(time.time()),
            "data": {"object": {"id": "pi_x", "object": "payment_intent", "status": "succeeded"}},
        }
    )
    header = signature_header(payload, stack_settings.stripe_webhook_secret.get_secret_value())
    response = await api.post("/webhooks/stripe", content=payload, headers={"Stripe-Signature": header})
    assert response.status_code == 200, response.text
    assert checked == [header]


async def test_an_oversized_body_is_413(api: httpx.AsyncClient, auth) -> None:
    response = await api.post("/users", json={"name": "x" * 1_100_000}, headers=auth("operator"))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def _raw_request(api_url: str, head: str) -> bytes:
    """Send only a request's head (a body announced, none sent) and read the answer: an answer at
    all means the body was not waited for."""
    host, port = api_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head.encode())
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
    finally:
        writer.close()


async def test_a_body_announced_beyond_the_bound_is_refused_unread(api_url: str, auth) -> None:
    token = auth("operator")["Authorization"]
    head = (
        f"POST /users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
    )
    answer = await _raw_request(api_url, head)
    assert answer.startswith(b"HTTP/1.1 413"), answer


async def test_a_chunked_body_beyond_the_bound_is_413_in_the_envelope(api: httpx.AsyncClient, auth) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(MAX_BODY_BYTES // 1000 + 1):
            yield b"x" * 1000
        yield b'"}'

    response = await api.post(
        "/users", content=chunks(), headers=auth("operator") | {"content-type": "application/json"}
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
    assert "content-length" not in response.request.headers  # it went chunked


def test_the_bound_holds_the_largest_legitimate_body() -> None:
    evidence = json.dumps({"text": "\U0001f4e6" * 20_000, "submit": True})  # escaped: 12 bytes a character
    assert len(evidence.encode()) <= MAX_BODY_BYTES < 1_000_000


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/users/usr_x/cards", {"card_token": PAN, "idempotency_key": "save-1"}),
        ("POST", "/users/usr_x/cards", {"card_token": "pm_card_visa", "idempotency_key": "save-1", "n": PAN}),
        ("POST", "/payments/init", {"saved_card_id": PAN, "amount": 100}),
        ("POST", f"/users/usr_x/cards/card_{PAN}/default", None),
        ("DELETE", f"/users/usr_x/cards/{PAN}", None),
        ("GET", f"/users/{PAN}/cards", None),
    ],
    ids=["save-token", "save-extra-field", "init-saved-card-id", "default-path", "delete-path", "list-path"],
)
async def test_card_numbers_are_refused_on_the_card_on_file_routes(
    api: httpx.AsyncClient, auth, method: str, path: str, body: dict | None
) -> None:
    response = await api.request(method, path, json=body, headers=auth("user", "usr_x"))
    assert response.status_code == 400 and response.json()["error"]["code"] == "card_data_rejected"


@pytest.mark.parametrize("field", ["card_token", "saved_card_id"])
async def test_a_card_number_as_another_card_is_refused_unread(parties: Parties, field: str, log_file: Path) -> None:
    """A declined payment's confirm with a card number where a token or a saved card's id goes:
    refused at the edge, so the payment's workflow never sees it (no attempt is counted)."""
    tx = await parties.authorized(card="pm_card_chargeDeclined")
    body = {"tx_id": tx["id"], "payment_method": {field: "4242 4242 4242 4242"}}
    response = await parties.api.post("/payments/confirm", json=body, headers=parties.as_user)
    assert response.status_code == 400 and response.json()["error"]["code"] == "card_data_rejected"
    after = await parties.get(tx["id"])
    assert (after["status"], after["card_attempts"]) == ("declined", 1)
    assert "4242 4242 4242 4242" not in log_file.read_text()
