"""AES-256-GCM with named keys: the first key encrypts, every key decrypts, so keys can rotate.

Used for Temporal payloads (the codec) and for card tokens at rest.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class KeyringError(ValueError):
    """A key spec that cannot be parsed, or ciphertext that no known key opens."""


@dataclass(frozen=True)
class Sealed:
    key_id: str
    blob: bytes  # nonce || ciphertext-with-tag


class Keyring:
    def __init__(self, keys: dict[str, bytes], active_key_id: str) -> None:
        if active_key_id not in keys:
            raise KeyringError("the active key is not in the keyring")
        self._ciphers = {kid: AESGCM(key) for kid, key in keys.items()}
        self.active_key_id = active_key_id

    @classmethod
    def from_spec(cls, spec: str) -> Keyring:
        """Parse `kid:base64key[,kid:base64key...]`; each key must be 32 bytes (AES-256)."""
        keys: dict[str, bytes] = {}
        order: list[str] = []
        for part in filter(None, (p.strip() for p in spec.split(","))):
            kid, sep, encoded = part.partition(":")
            if not sep or not kid:
                raise KeyringError("each encryption key must look like 'key_id:base64'")
            try:
                key = base64.b64decode(encoded, validate=True)
            except binascii.Error as exc:
                raise KeyringError(f"encryption key {kid!r} is not valid base64") from exc
            if len(key) != 32:
                raise KeyringError(f"encryption key {kid!r} must be 32 bytes, got {len(key)}")
            if kid in keys:
                raise KeyringError(f"encryption key id {kid!r} appears twice")
            keys[kid] = key
            order.append(kid)
        if not order:
            raise KeyringError("no encryption key configured")
        return cls(keys, order[0])

    def seal(self, plaintext: bytes, associated_data: bytes | None = None) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        cipher = self._ciphers[self.active_key_id]
        return Sealed(self.active_key_id, nonce + cipher.encrypt(nonce, plaintext, associated_data))

    def open(self, sealed: Sealed, associated_data: bytes | None = None) -> bytes:
        cipher = self._ciphers.get(sealed.key_id)
        if cipher is None:
            raise KeyringError(f"unknown encryption key id {sealed.key_id!r}")
        nonce, body = sealed.blob[:NONCE_BYTES], sealed.blob[NONCE_BYTES:]
        try:
            return cipher.decrypt(nonce, body, associated_data)
        except InvalidTag as exc:
            raise KeyringError("ciphertext failed authentication") from exc


def new_key_spec(key_id: str) -> str:
    """A fresh `kid:base64` entry, for operators generating keys."""
    return f"{key_id}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"
