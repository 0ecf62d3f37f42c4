"""The one Temporal client factory, for the API, the worker, the CLI and the benchmarks alike (in
config/, the layer they all depend on, so the API never imports from workers/)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from temporalio.client import Client
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from config.codec import EncryptionCodec
from config.keyring import Keyring
from config.settings import Settings
from config.tracing import temporal_interceptors


def data_converter(keyring: Keyring) -> DataConverter:
    """Encrypt every payload, and failure messages and stack traces too (they can hold data)."""
    return dataclasses.replace(
        DataConverter.default,
        payload_codec=EncryptionCodec(keyring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def _tls(settings: Settings) -> bool | TLSConfig:
    if settings.temporal_tls_client_cert_path and settings.temporal_tls_client_key_path:
        return TLSConfig(
            client_cert=Path(settings.temporal_tls_client_cert_path).read_bytes(),
            client_private_key=Path(settings.temporal_tls_client_key_path).read_bytes(),
        )
    return settings.temporal_tls


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """`runtime`: the SDK runtime that carries the worker's metrics (None: the default one)."""
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        settings.temporal_target,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(Keyring.from_spec(settings.encryption_keys.get_secret_value())),
        tls=_tls(settings),
        api_key=api_key,
        runtime=runtime,
        interceptors=temporal_interceptors(),
    )
