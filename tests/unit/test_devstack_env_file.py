"""`.devstack/env`: what a second shell needs to reach the stack `make dev` runs."""

import shlex

from pydantic import SecretStr

from devstack.local import env_file_text
from payments.config.local_stack import local_settings
from payments.config.settings import Settings
from payments.schema.database import asyncpg_url


def _exports(text: str) -> dict[str, str]:
    lines = [line.removeprefix("export ") for line in text.splitlines() if line.startswith("export ")]
    return {name: shlex.split(value)[0] for name, value in (line.split("=", 1) for line in lines)}


def test_the_local_stack_is_named_by_its_ports() -> None:
    settings = Settings(api_port=18000, postgres_port=18432, redis_port=18379, temporal_port=17233)
    names = _exports(env_file_text(settings, "a.b.c"))
    assert names["API"] == "http://127.0.0.1:18000" and names["CODEC_ENDPOINT"] == "http://127.0.0.1:18000/codec"
    assert names["DATABASE_URL"] == "postgresql://postgres@127.0.0.1:18432/payments"
    assert names["REDIS_URL"] == "redis://127.0.0.1:18379/0" and names["TEMPORAL_ADDRESS"] == "127.0.0.1:17233"
    assert names["PAYMENTS_API_PORT"] == "18000" and names["TOKEN"] == "a.b.c"
    # Started services are found by their ports: no URL setting that would stop a later `make dev`
    # in that shell from starting them.
    assert not {"PAYMENTS_DATABASE_URL", "PAYMENTS_REDIS_URL", "PAYMENTS_TEMPORAL_ADDRESS"} & set(names)
    assert local_settings(settings).database_url == names["DATABASE_URL"]


def test_services_given_by_url_go_along_as_given_and_real_stripe_has_no_emulator() -> None:
    settings = Settings(
        database_url="postgresql://app@db.internal:5432/payments",
        redis_url="redis://cache.internal:6379/0",
        temporal_address="temporal.internal:7233",
        stripe_api_key=SecretStr("sk_test_x"),
        worker_metrics_port=0,
    )
    names = _exports(env_file_text(settings, "t"))
    assert names["PAYMENTS_DATABASE_URL"] == names["DATABASE_URL"] == settings.database_url
    assert names["PAYMENTS_REDIS_URL"] == names["REDIS_URL"] == settings.redis_url
    assert names["PAYMENTS_TEMPORAL_ADDRESS"] == names["TEMPORAL_ADDRESS"] == "temporal.internal:7233"
    assert not {"STRIPE_API_BASE", "TEMPORAL_UI", "WORKER_METRICS"} & set(names)
    assert "sk_test_x" not in env_file_text(settings, "t")  # a secret stays out of the file


def test_with_a_standby_the_stack_is_reached_at_whichever_node_takes_writes() -> None:
    settings = Settings(postgres_standby=True, postgres_port=18432, postgres_standby_port=18433)
    url = asyncpg_url(str(local_settings(settings).database_url))
    assert url.query == {"host": ("127.0.0.1:18432", "127.0.0.1:18433"), "target_session_attrs": "read-write"}
    assert url.database == "payments" and url.host is None
