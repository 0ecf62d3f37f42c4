"""JWT bearer auth: HS256 with a shared secret locally, RS256 with a JWKS endpoint in production."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt

from payments.api.jwks import JwksKeys, UnknownKeyId
from payments.config.settings import Settings

Role = Literal["user", "merchant", "operator"]
ROLES: tuple[Role, ...] = ("user", "merchant", "operator")


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role

    def is_(self, role: Role, subject: str | None = None) -> bool:
        return self.role == role and (subject is None or self.subject == subject)


class TokenVerifier:
    """`keys`: the identity provider's, with RS256 (payments/api/jwks.py); HS256 uses the shared secret."""

    def __init__(self, settings: Settings, keys: JwksKeys | None = None) -> None:
        self._settings = settings
        self._jwks = keys

    def _key(self, token: str) -> object:
        if self._settings.jwt_algorithm == "RS256":
            if self._jwks is None:
                raise InvalidToken("RS256 needs PAYMENTS_JWT_JWKS_URL")
            try:
                return self._jwks.key(jwt.get_unverified_header(token).get("kid"))
            except UnknownKeyId as exc:
                raise InvalidToken(str(exc)) from exc
        return self._settings.jwt_secret.get_secret_value()

    def verify(self, token: str) -> Principal:
        try:
            # Exactly one algorithm is accepted, so `alg: none` and HS/RS confusion are refused.
            claims = jwt.decode(
                token,
                self._key(token),  # type: ignore[arg-type]
                algorithms=[self._settings.jwt_algorithm],
                audience=self._settings.jwt_audience,
                issuer=self._settings.jwt_issuer,
                options={"require": ["sub", "exp"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        exp = claims["exp"]
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise InvalidToken("the token's exp must be a number")
        if exp - datetime.now(UTC).timestamp() > self._settings.jwt_max_lifetime.total_seconds():
            raise InvalidToken("the token lives longer than PAYMENTS_JWT_MAX_LIFETIME allows")
        role = claims.get("role")
        if role not in ROLES:
            raise InvalidToken("the token's role is missing or unknown")
        return Principal(subject=str(claims["sub"]), role=role)


def mint_token(settings: Settings, subject: str, role: Role, ttl: timedelta | None = None) -> str:
    """A local HS256 token (`payments token`); production tokens come from the identity provider."""
    now = datetime.now(UTC)
    claims = {"sub": subject, "role": role, "iat": now, "exp": now + (ttl or settings.token_ttl)}
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")
