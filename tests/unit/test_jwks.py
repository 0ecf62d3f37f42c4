"""RS256 keys come from a local JWKS server in the background: a request never waits on it, the last
good keys serve through an outage, and past the bound every token is refused."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from payments.api.auth import InvalidToken, TokenVerifier
from payments.api.jwks import JwksKeys, KeysUnavailable
from payments.config.settings import Settings
from tests.services import eventually


class Provider:
    """A JWKS endpoint whose key set and health the test changes."""

    def __init__(self) -> None:
        self.private: dict[str, rsa.RSAPrivateKey] = {}
        self.failing = False
        self.requests = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.requests += 1
                body = json.dumps(provider.jwks()).encode()
                self.send_response(500 if provider.failing else 200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"

    def add_key(self, kid: str) -> None:
        self.private[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.private.items():
            jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
            keys.append(jwk | {"kid": kid, "alg": "RS256", "use": "sig"})
        return {"keys": keys}

    def token(self, kid: str) -> str:
        claims: dict[str, Any] = {"sub": "u1", "role": "user", "aud": "payments", "iss": "https://idp.test/"}
        claims["exp"] = datetime.now(UTC) + timedelta(minutes=5)
        return jwt.encode(claims, self.private[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def provider() -> Iterator[Provider]:
    provider = Provider()
    provider.add_key("k1")
    thread = threading.Thread(target=provider.server.serve_forever, daemon=True)
    thread.start()
    yield provider
    provider.server.shutdown()
    provider.server.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def verifier(keys: JwksKeys) -> TokenVerifier:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, jwt_algorithm="RS256", jwt_audience="payments", jwt_issuer="https://idp.test/"
    )
    return TokenVerifier(settings, keys)


async def subject(check: TokenVerifier, token: str) -> str | None:
    try:
        return check.verify(token).subject
    except (KeysUnavailable, InvalidToken):
        return None


async def test_tokens_verify_from_the_last_good_keys_and_fail_closed_past_the_bound(provider: Provider) -> None:
    clock = Clock()
    keys = JwksKeys(provider.url, refresh_every=3600, max_age=600, unknown_kid_every=30, clock=clock)
    check = verifier(keys)
    with pytest.raises(KeysUnavailable):
        check.verify(provider.token("k1"))  # nothing fetched yet: refused, not waited for
    keys.start()
    try:
        await eventually(lambda: subject(check, provider.token("k1")), lambda s: s == "u1", "first fetch", 10)

        provider.failing = True
        clock.now += 599  # the provider is down; the keys are still young enough
        assert check.verify(provider.token("k1")).subject == "u1"
        clock.now += 2
        with pytest.raises(KeysUnavailable):
            check.verify(provider.token("k1"))
    finally:
        await keys.close()


async def test_an_unknown_key_id_is_refused_at_once_and_fetched_once_per_interval(provider: Provider) -> None:
    clock = Clock()
    keys = JwksKeys(provider.url, refresh_every=3600, max_age=7200, unknown_kid_every=30, clock=clock)
    check = verifier(keys)
    keys.start()

    async def requests() -> int:
        return provider.requests

    try:
        await eventually(lambda: subject(check, provider.token("k1")), lambda s: s == "u1", "first fetch", 10)
        provider.add_key("k2")  # rotated at the provider
        clock.now += 30
        for _ in range(20):
            with pytest.raises(InvalidToken, match="unknown signing key"):
                check.verify(provider.token("k2"))
        await eventually(lambda: subject(check, provider.token("k2")), lambda s: s == "u1", "rotated key", 10)
        assert provider.requests == 2

        provider.add_key("k3")
        clock.now += 29  # within the interval: refused, and the provider is not asked again
        for _ in range(20):
            with pytest.raises(InvalidToken):
                check.verify(provider.token("k3"))
        clock.now += 1
        with pytest.raises(InvalidToken):
            check.verify(provider.token("k3"))
        await eventually(requests, lambda n: n == 3, "one more fetch", 10)
    finally:
        await keys.close()
