"""The one Temporal client factory, for the API, the worker, the CLI and the benchmarks alike (in
payments/config/, the layer they all depend on, so the API never imports from workers/)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from temporalio.client import Client
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from payments.config.codec import EncryptionCodec
from payments.config.keyring import Keyring
from payments.config.settings import Settings
from payments.config.tracing import temporal_interceptors


def data_converter(keyring: Keyring) -> DataConverter:
    """Encrypt every payload, and failure messages and stack traces too (they can hold data)."""
    return dataclasses.replace(
        DataConverter.default,
        payload_codec=EncryptionCodec(keyring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def tls_config(settings: Settings) -> TLSConfig | bool:
    """TLS to the Temporal frontend: a client certificate (mTLS), a CA and a server name to verify it
    by, each optional; False only when none is asked for (the local dev server)."""
    if not settings.temporal_uses_tls:
        return False

    def read(path: str | None) -> bytes | None:
        return Path(path).read_bytes() if path else None

    with_client_cert = settings.temporal_tls_client_cert_path and settings.temporal_tls_client_key_path
    return TLSConfig(
        server_root_ca_cert=read(settings.temporal_tls_ca),
        domain=settings.temporal_tls_server_name,
        client_cert=read(settings.temporal_tls_client_cert_path) if with_client_cert else None,
        client_private_key=read(settings.temporal_tls_client_key_path) if with_client_cert else None,
    )


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """`runtime`: the SDK runtime that carries the worker's metrics (None: the default one)."""
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        settings.temporal_target,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(Keyring.from_spec(settings.encryption_keys.get_secret_value())),
        tls=tls_config(settings),
        api_key=api_key,
        runtime=runtime,
        interceptors=temporal_interceptors(),
    )
