"""The edge beyond card numbers: tokens, security headers, hosts, CORS, webhook freshness, NULs."""

import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from payments.config.settings import Settings
from stripe_emulator.webhooks import signature_header
from tests.services import fresh_key


def _token(settings: Settings, exp: object) -> dict[str, str]:
    claims = {"sub": "op_edge", "role": "operator", "exp": exp}
    return {"Authorization": f"Bearer {jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm='HS256')}"}


@pytest.mark.parametrize(
    "exp",
    [
        int((datetime.now(UTC) + timedelta(days=3650)).timestamp()),
        str(int((datetime.now(UTC) + timedelta(hours=1)).timestamp())),
    ],
    ids=["ten-years", "string-exp"],
)
async def test_tokens_beyond_the_maximum_lifetime_or_with_a_string_exp_are_401(
    api: httpx.AsyncClient, stack_settings: Settings, exp: object
) -> None:
    response = await api.get("/reconciliation/runs", headers=_token(stack_settings, exp))
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


async def test_a_token_within_the_lifetime_is_accepted(api: httpx.AsyncClient, stack_settings: Settings) -> None:
    exp = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
    response = await api.get("/reconciliation/runs", headers=_token(stack_settings, exp))
    assert response.status_code == 200


async def test_every_answer_carries_the_security_headers_and_no_server_banner(api: httpx.AsyncClient, auth) -> None:
    for response in (await api.get("/healthz"), await api.get("/payments/tx_missing", headers=auth("operator"))):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
        assert "server" not in response.headers


async def test_a_foreign_host_header_is_refused(api: httpx.AsyncClient) -> None:
    """DNS rebinding: a page of evil.example resolving to 127.0.0.1 reaches us with its own Host."""
    response = await api.post("/codec/decode", json={"payloads": []}, headers={"Host": "evil.example"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "unknown_host"
    ipv6 = await api.get("/healthz", headers={"Host": "[::1]:8000"})
    assert ipv6.status_code == 200


async def test_cors_is_granted_to_the_temporal_ui_on_the_codec_only(
    api: httpx.AsyncClient, stack_settings: Settings
) -> None:
    origin = stack_settings.ui_origin
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    codec = await api.options("/codec/decode", headers=preflight)
    assert codec.headers.get("access-control-allow-origin") == origin
    other = await api.options("/payments/init", headers=preflight)
    assert "access-control-allow-origin" not in other.headers


def _event_payload() -> str:
    return json.dumps(
        {
            "id": f"evt_{fresh_key()}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "data": {"object": {"id": "pi_x", "object": "payment_intent", "status": "succeeded"}},
        }
    )


async def test_a_webhook_stamped_in_the_future_is_refused(api: httpx.AsyncClient, stack_settings: Settings) -> None:
    payload = _event_payload()
    secret = stack_settings.stripe_webhook_secret.get_secret_value()
    tomorrow = signature_header(payload, secret, timestamp=int(time.time()) + 86_400)
    response = await api.post("/webhooks/stripe", content=payload, headers={"Stripe-Signature": tomorrow})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_signature"
    now = await api.post(
        "/webhooks/stripe", content=payload, headers={"Stripe-Signature": signature_header(payload, secret)}
    )
    assert now.status_code == 200


@pytest.mark.parametrize(
    "method, url, body",
    [
        ("POST", "/users", {"name": "Ada\u0000Lovelace"}),
        ("POST", "/merchants", {"name": "Shop\u0000"}),
        ("GET", "/payments/tx_%00abc", None),
        ("GET", "/transactions/usr_x?cursor=%00", None),
    ],
    ids=["user-name", "merchant-name", "path", "query"],
)
async def test_a_nul_anywhere_is_a_clear_400(api: httpx.AsyncClient, auth, method: str, url: str, body) -> None:
    response = await api.request(method, url, json=body, headers=auth("operator"))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "nul_character"


async def test_a_control_character_in_a_name_is_a_validation_error(api: httpx.AsyncClient, auth) -> None:
    response = await api.post("/users", json={"name": "Ada\u0007"}, headers=auth("operator"))
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        "[]",
        json.dumps({"id": "evt_1", "type": "payment_intent.succeeded"}),
        json.dumps({"type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1"}}}),
        json.dumps({"id": "evt_1", "type": "x", "data": {"object": "pi_1"}}),
        json.dumps({"id": "evt_\u0000", "type": "x", "data": {"object": {"id": "pi_1"}}}),
        json.dumps({"id": "evt_2", "type": "payment_intent.payment_failed", "data": {"object": {"id": "pi_1"}}}),
        json.dumps({"id": 7, "type": ["a"], "data": {"object": {"id": {"x": 1}}}}),
    ],
    ids=[
        "not-json",
        "array",
        "no-data",
        "no-id",
        "object-not-a-dict",
        "nul-id",
        "intent-without-status",
        "wrong-types",
    ],
)
async def test_a_signed_but_malformed_event_is_400_not_500(
    api: httpx.AsyncClient, stack_settings: Settings, payload: str
) -> None:
    secret = stack_settings.stripe_webhook_secret.get_secret_value()
    response = await api.post(
        "/webhooks/stripe", content=payload, headers={"Stripe-Signature": signature_header(payload, secret)}
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_event", response.text
