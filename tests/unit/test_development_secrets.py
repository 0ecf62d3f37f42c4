from typing import Any

import pytest
from pydantic import SecretStr

from payments.config.keyring import new_key_spec
from payments.config.settings import DevelopmentSecretInUse, Settings

OWN: dict[str, Any] = {
    "jwt_secret": SecretStr("an-operator-chosen-secret-of-enough-length"),
    "stripe_webhook_secret": SecretStr("whsec_live_own"),
    "encryption_keys": SecretStr(new_key_spec("prod1")),
    "database_url": "postgresql://payments@db.internal/payments?sslmode=verify-full",
    "redis_url": "rediss://redis.internal:6380/0",
}


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYMENTS_ENV", raising=False)


@pytest.mark.parametrize(
    "setting, variable",
    [
        ("jwt_secret", "PAYMENTS_JWT_SECRET"),
        ("stripe_webhook_secret", "PAYMENTS_STRIPE_WEBHOOK_SECRET"),
        ("encryption_keys", "PAYMENTS_ENCRYPTION_KEYS"),
    ],
)
def test_outside_development_each_development_secret_is_refused_by_name(setting: str, variable: str) -> None:
    own = {name: value for name, value in OWN.items() if name != setting}
    with pytest.raises(DevelopmentSecretInUse, match=variable):
        Settings(_env_file=None, **own).refuse_unsafe_configuration()  # type: ignore[call-arg]


def test_a_development_key_kept_for_decryption_is_refused_too() -> None:
    from payments.config.settings import DEV_ENCRYPTION_KEYS

    keys = SecretStr(f"{OWN['encryption_keys'].get_secret_value()},{DEV_ENCRYPTION_KEYS}")
    with pytest.raises(DevelopmentSecretInUse, match="PAYMENTS_ENCRYPTION_KEYS"):
        Settings(_env_file=None, **(OWN | {"encryption_keys": keys})).refuse_unsafe_configuration()  # type: ignore[call-arg]


def test_own_secrets_start_and_development_allows_the_repository_ones() -> None:
    Settings(_env_file=None, **OWN).refuse_unsafe_configuration()  # type: ignore[call-arg]
    Settings(_env_file=None, env="development").refuse_unsafe_configuration()  # type: ignore[call-arg]


def test_the_api_and_the_worker_refuse_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from payments.api.app import create_app
    from payments.workers.worker import run_worker

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    with pytest.raises(DevelopmentSecretInUse):
        create_app(settings)
    with pytest.raises(DevelopmentSecretInUse):
        asyncio.run(run_worker(settings))
