"""JWT auth and roles, and the error envelope on every kind of error."""

from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from payments.api.auth import Principal, TokenVerifier
from payments.config.settings import Settings


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _claims(**overrides: object) -> dict[str, object]:
    now = datetime.now(UTC)
    return {"sub": "op_1", "role": "operator", "iat": now, "exp": now + timedelta(minutes=5)} | overrides


def _assert_envelope(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]


async def test_a_valid_operator_token_is_accepted(api: httpx.AsyncClient, auth) -> None:
    response = await api.post("/users", json={"name": "Grace"}, headers=auth("operator"))
    assert response.status_code == 201
    assert response.json()["name"] == "Grace"
    assert response.json()["id"].startswith("usr_")


async def test_a_missing_token_is_401(api: httpx.AsyncClient) -> None:
    response = await api.post("/users", json={"name": "x"})
    _assert_envelope(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(
            lambda s: jwt.encode(
                _claims(exp=datetime.now(UTC) - timedelta(seconds=1)), s.jwt_secret.get_secret_value(), "HS256"
            ),
            id="expired",
        ),
        pytest.param(lambda s: jwt.encode(_claims(), "another-secret-entirely-32-bytes!!", "HS256"), id="forged"),
        pytest.param(lambda s: jwt.encode(_claims(), "", "none"), id="alg-none"),
        pytest.param(
            lambda s: jwt.encode(_claims(role="admin"), s.jwt_secret.get_secret_value(), "HS256"), id="unknown-role"
        ),
        pytest.param(
            lambda s: jwt.encode({"sub": "x", "role": "operator"}, s.jwt_secret.get_secret_value(), "HS256"),
            id="no-expiry",
        ),
        pytest.param(lambda s: "not-a-jwt", id="garbage"),
    ],
)
async def test_bad_tokens_are_401(api: httpx.AsyncClient, stack_settings: Settings, make_token) -> None:
    response = await api.post("/users", json={"name": "x"}, headers=_bearer(make_token(stack_settings)))
    _assert_envelope(response, 401, "unauthorized")


@pytest.mark.parametrize("role", ["user", "merchant"])
async def test_a_token_for_another_role_is_403(api: httpx.AsyncClient, auth, role: str) -> None:
    response = await api.post("/users", json={"name": "x"}, headers=auth(role, "someone"))
    _assert_envelope(response, 403, "forbidden")


async def test_unknown_routes_and_methods_use_the_envelope(api: httpx.AsyncClient) -> None:
    _assert_envelope(await api.get("/no/such/route"), 404, "not_found")
    _assert_envelope(await api.delete("/healthz"), 405, "method_not_allowed")


async def test_validation_errors_use_the_envelope_and_name_the_field(api: httpx.AsyncClient, auth) -> None:
    response = await api.post("/merchants", json={"name": "m", "currency": "USD!"}, headers=auth("operator"))
    _assert_envelope(response, 422, "validation_error")
    assert "currency" in response.json()["error"]["message"]


async def test_malformed_json_is_a_422_not_a_500(api: httpx.AsyncClient, auth) -> None:
    response = await api.post(
        "/users", content=b'{"name": ', headers=auth("operator") | {"content-type": "application/json"}
    )
    _assert_envelope(response, 422, "validation_error")


async def test_a_sane_request_id_is_echoed(api: httpx.AsyncClient) -> None:
    response = await api.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert response.headers["x-request-id"] == "trace-123"
    hostile = await api.get("/healthz", headers={"X-Request-ID": "x" * 65})
    assert hostile.headers["x-request-id"].startswith("req_")


async def test_a_token_is_verified_once_per_request(
    api: httpx.AsyncClient, auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The address limit (before the body is read) and the route's caller share one verification."""
    verified: list[str] = []
    verify = TokenVerifier.verify

    def counted(self: TokenVerifier, token: str) -> Principal:
        verified.append(token)
        return verify(self, token)

    monkeypatch.setattr(TokenVerifier, "verify", counted)
    headers = auth("operator")
    response = await api.post("/users", json={"name": "Ada"}, headers=headers)
    assert response.status_code == 201
    assert verified == [headers["Authorization"].removeprefix("Bearer ")]
