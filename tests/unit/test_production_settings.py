"""Outside development, each setting that would leave money or data open stops the start, by name."""

from typing import Any

import pytest
from pydantic import SecretStr

from payments.config.settings import DevelopmentSecretInUse, Settings, UnsafeConfiguration
from tests.unit.test_development_secrets import OWN

RS256 = {"jwt_jwks_url": "https://idp.example/jwks", "jwt_audience": "payments", "jwt_issuer": "https://idp.example/"}


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PAYMENTS_ENV", "PAYMENTS_STRIPE_API_KEY", "PAYMENTS_DATABASE_URL", "PAYMENTS_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)


def production(**changes: Any) -> Settings:
    return Settings(_env_file=None, **(OWN | changes))  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "changes, variable",
    [
        ({"codec_require_auth": False}, "PAYMENTS_CODEC_REQUIRE_AUTH"),
        ({"jwt_secret": SecretStr("x" * 31)}, "PAYMENTS_JWT_SECRET"),
        (
            {"stripe_api_key": SecretStr("sk_live_abc"), "stripe_api_base": "http://stripe.example"},
            "PAYMENTS_STRIPE_API_BASE",
        ),
        (
            {"stripe_api_key": SecretStr("rk_live_abc"), "stripe_api_base": "http://stripe.example"},
            "PAYMENTS_STRIPE_API_BASE",
        ),
        ({"database_url": None}, "PAYMENTS_DATABASE_URL"),
        ({"database_url": "postgresql://payments@db.internal/payments"}, "PAYMENTS_DATABASE_URL"),
        ({"database_url": "postgresql://payments@db.internal/payments?sslmode=require"}, "PAYMENTS_DATABASE_URL"),
        ({"database_url": "postgresql://payments@db.internal/payments?ssl=prefer"}, "PAYMENTS_DATABASE_URL"),
        ({"redis_url": None}, "PAYMENTS_REDIS_URL"),
        *(
            ({"jwt_algorithm": "RS256", **(RS256 | {setting: None})}, f"PAYMENTS_{setting.upper()}")
            for setting in RS256
        ),
        ({"redis_url": "redis://redis.internal:6379/0"}, "PAYMENTS_REDIS_URL"),
    ],
)
def test_each_unsafe_production_setting_is_refused_by_name(changes: dict[str, Any], variable: str) -> None:
    with pytest.raises(UnsafeConfiguration, match=variable):
        production(**changes).refuse_unsafe_configuration()


@pytest.mark.parametrize(
    "changes",
    [
        {"database_url": "postgresql://payments@db.internal/payments?ssl=verify-full"},
        {"database_url": "postgresql://payments@/payments?host=/var/run/postgresql"},
        {"redis_url": "unix:///var/run/redis/redis.sock?db=0"},
        {"jwt_secret": SecretStr("x" * 32)},
        {"stripe_api_key": SecretStr("sk_live_abc")},
        {"stripe_api_key": SecretStr("sk_test_abc"), "stripe_api_base": "http://stripe-mock.internal"},
        {"jwt_algorithm": "RS256", "jwt_secret": SecretStr("unused"), **RS256},
    ],
)
def test_safe_production_settings_start(changes: dict[str, Any]) -> None:
    production(**changes).refuse_unsafe_configuration()


def test_development_allows_the_local_stack_settings() -> None:
    Settings(_env_file=None, env="development", codec_require_auth=False).refuse_unsafe_configuration()  # type: ignore[call-arg]


def test_a_live_stripe_key_refuses_development_secrets_even_in_development() -> None:
    settings = Settings(_env_file=None, env="development", stripe_api_key=SecretStr("sk_live_abc"))  # type: ignore[call-arg]
    with pytest.raises(DevelopmentSecretInUse, match="PAYMENTS_JWT_SECRET"):
        settings.refuse_unsafe_configuration()
