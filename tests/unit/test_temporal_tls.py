"""TLS to Temporal: the API key never goes in clear, and a CA and server name reach TLSConfig."""

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.service import TLSConfig

from payments.config.settings import Settings, UnsafeConfiguration
from payments.config.temporal import tls_config
from tests.unit.test_development_secrets import OWN


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **(OWN | values))  # type: ignore[call-arg]


@pytest.mark.parametrize("env", ["production", "development"])
def test_an_api_key_without_tls_is_refused(env: str) -> None:
    with pytest.raises(UnsafeConfiguration, match="PAYMENTS_TEMPORAL_API_KEY"):
        settings(env=env, temporal_api_key=SecretStr("key"), temporal_tls=False).refuse_unsafe_configuration()


def test_an_api_key_with_tls_starts_on_a_default_tls_config() -> None:
    configured = settings(temporal_api_key=SecretStr("key"), temporal_tls=True)
    configured.refuse_unsafe_configuration()
    assert tls_config(configured) == TLSConfig()


def test_a_ca_and_server_name_are_given_to_temporal(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n")
    configured = settings(
        temporal_api_key=SecretStr("key"), temporal_tls_ca=str(ca), temporal_tls_server_name="temporal.internal"
    )
    configured.refuse_unsafe_configuration()  # a CA or server name implies TLS
    assert tls_config(configured) == TLSConfig(server_root_ca_cert=ca.read_bytes(), domain="temporal.internal")


def test_a_client_certificate_is_kept(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_bytes(b"cert")
    (tmp_path / "k.pem").write_bytes(b"key")
    configured = settings(
        temporal_tls_client_cert_path=str(tmp_path / "c.pem"), temporal_tls_client_key_path=str(tmp_path / "k.pem")
    )
    assert tls_config(configured) == TLSConfig(client_cert=b"cert", client_private_key=b"key")


def test_the_local_dev_server_has_no_tls() -> None:
    assert tls_config(settings(env="development")) is False
