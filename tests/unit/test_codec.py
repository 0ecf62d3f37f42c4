from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from payments.config.codec import ENCODING, KEY_ID, EncryptionCodec
from payments.config.keyring import Keyring, new_key_spec
from payments.config.temporal import data_converter


async def test_every_payload_is_encrypted_with_the_key_id_in_metadata() -> None:
    codec = EncryptionCodec(Keyring.from_spec(new_key_spec("k1")))
    plain = DataConverter.default.payload_converter.to_payloads(["tok_visa", {"name": "Ada"}])
    encoded = await codec.encode(plain)
    for payload in encoded:
        assert payload.metadata["encoding"] == ENCODING
        assert payload.metadata[KEY_ID] == b"k1"
        assert b"tok_visa" not in payload.data and b"Ada" not in payload.data
    assert await codec.decode(encoded) == plain


async def test_payloads_from_a_rotated_out_key_still_decode() -> None:
    old, new = new_key_spec("old"), new_key_spec("new")
    plain = DataConverter.default.payload_converter.to_payloads(["history"])
    written_before = await EncryptionCodec(Keyring.from_spec(old)).encode(plain)
    assert await EncryptionCodec(Keyring.from_spec(f"{new},{old}")).decode(written_before) == plain


async def test_unencrypted_payloads_pass_through_decode() -> None:
    codec = EncryptionCodec(Keyring.from_spec(new_key_spec("k1")))
    plain = [Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')]
    assert await codec.decode(plain) == plain


async def test_failure_messages_and_stack_traces_are_encrypted_too() -> None:
    converter = data_converter(Keyring.from_spec(new_key_spec("k1")))
    failure = Failure()
    try:
        raise ApplicationError("declined for tok_visa belonging to Ada")
    except ApplicationError as exc:
        await converter.encode_failure(exc, failure)
    assert "tok_visa" not in failure.message and "tok_visa" not in failure.stack_trace
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    decoded = await converter.decode_failure(failure)
    assert str(decoded) == "declined for tok_visa belonging to Ada"
