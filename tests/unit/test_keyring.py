import base64

import pytest

from payments.config.keyring import Keyring, KeyringError, new_key_spec


def test_sealed_data_opens_and_is_not_plaintext() -> None:
    keyring = Keyring.from_spec(new_key_spec("k1"))
    sealed = keyring.seal(b"tok_visa")
    assert sealed.key_id == "k1"
    assert b"tok_visa" not in sealed.blob
    assert keyring.open(sealed) == b"tok_visa"


def test_rotation_new_key_encrypts_old_key_still_decrypts() -> None:
    old_spec, new_spec = new_key_spec("old"), new_key_spec("new")
    sealed_before = Keyring.from_spec(old_spec).seal(b"secret")
    rotated = Keyring.from_spec(f"{new_spec},{old_spec}")
    assert rotated.open(sealed_before) == b"secret"
    assert rotated.seal(b"x").key_id == "new"


def test_tampered_ciphertext_is_refused() -> None:
    keyring = Keyring.from_spec(new_key_spec("k1"))
    sealed = keyring.seal(b"secret")
    tampered = type(sealed)(sealed.key_id, sealed.blob[:-1] + bytes([sealed.blob[-1] ^ 1]))
    with pytest.raises(KeyringError, match="authentication"):
        keyring.open(tampered)


def test_unknown_key_id_is_refused() -> None:
    sealed = Keyring.from_spec(new_key_spec("gone")).seal(b"secret")
    with pytest.raises(KeyringError, match="unknown encryption key id"):
        Keyring.from_spec(new_key_spec("k1")).open(sealed)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "no encryption key"),
        ("nokey", "key_id:base64"),
        ("k1:not base64!", "not valid base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "must be 32 bytes"),
        (f"{new_key_spec('k1')},{new_key_spec('k1')}", "appears twice"),
    ],
    ids=["empty", "no-colon", "not-base64", "short", "twice"],  # fixed: the keys are random
)
def test_bad_key_specs_are_refused_with_a_reason(spec: str, message: str) -> None:
    with pytest.raises(KeyringError, match=message):
        Keyring.from_spec(spec)
