"""AES-256-GCM payload codec: everything the SDK sends to Temporal is ciphertext, key id in metadata.

The same codec serves the Temporal UI through the API's /codec endpoints, so operators read
histories in the browser while Temporal's database only ever holds ciphertext.
"""

from __future__ import annotations

from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from payments.config.keyring import Keyring, Sealed

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"


class EncryptionCodec(PayloadCodec):
    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._seal(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._open(p) for p in payloads]

    def _seal(self, payload: Payload) -> Payload:
        sealed = self._keyring.seal(payload.SerializeToString())
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: sealed.key_id.encode()},
            data=sealed.blob,
        )

    def _open(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before encryption was on, or by another codec
        sealed = Sealed(payload.metadata[KEY_ID].decode(), payload.data)
        return Payload.FromString(self._keyring.open(sealed))
