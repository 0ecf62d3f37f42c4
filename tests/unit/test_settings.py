from datetime import timedelta

import pytest

from payments.config.settings import Settings


def test_every_setting_is_read_from_a_payments_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_DATABASE_URL", "postgresql://db.example/payments")
    monkeypatch.setenv("PAYMENTS_TEMPORAL_ADDRESS", "temporal.example:7233")
    monkeypatch.setenv("PAYMENTS_TEMPORAL_API_KEY", "secret-key")
    monkeypatch.setenv("PAYMENTS_STRIPE_API_KEY", "sk_live_x")
    monkeypatch.setenv("PAYMENTS_AUTHORIZATION_EXPIRY", "P3D")
    monkeypatch.setenv("PAYMENTS_RECONCILIATION_INTERVAL", "PT1H")
    monkeypatch.setenv("PAYMENTS_JWT_ALGORITHM", "RS256")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url == "postgresql://db.example/payments"
    assert settings.temporal_target == "temporal.example:7233"
    assert settings.temporal_api_key is not None and settings.temporal_api_key.get_secret_value() == "secret-key"
    assert not settings.stripe_uses_emulator
    assert settings.authorization_expiry == timedelta(days=3)
    assert settings.reconciliation_interval == timedelta(hours=1)
    assert settings.jwt_algorithm == "RS256"


def test_secrets_do_not_show_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_STRIPE_API_KEY", "sk_live_supersecret")
    assert "sk_live_supersecret" not in repr(Settings(_env_file=None))  # type: ignore[call-arg]


def test_defaults_use_the_local_stack_ports_not_the_machine_services() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.postgres_port != 5432 and settings.redis_port != 6379
    assert settings.temporal_target == "127.0.0.1:7233"
    assert settings.stripe_uses_emulator


def test_stripes_webhook_addresses_are_read_as_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_STRIPE_WEBHOOK_SOURCES", '["3.18.12.63", "3.130.192.0/24"]')
    sources = Settings(_env_file=None).stripe_webhook_sources  # type: ignore[call-arg]
    assert [str(network) for network in sources] == ["3.18.12.63/32", "3.130.192.0/24"]


@pytest.mark.parametrize(
    "variable", ["PAYMENTS_RATE_LIMIT_PER_SECOND", "PAYMENTS_STRIPE_WEBHOOK_RATE_LIMIT_PER_SECOND"]
)
def test_a_rate_limit_of_nothing_is_refused_at_start(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    """A bucket refilling at 0/s would divide by zero in its script on the first request."""
    monkeypatch.setenv(variable, "0")
    with pytest.raises(ValueError, match="greater than 0"):
        Settings(_env_file=None)  # type: ignore[call-arg]
