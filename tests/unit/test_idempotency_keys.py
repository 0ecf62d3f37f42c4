import pytest
from pydantic import ValidationError

from payments.api.models import RefundCreate


@pytest.mark.parametrize(
    "key",
    [
        "order-1042",
        "refund:2026-11-24.1",
        "a" * 255,
        "n" + "1" * 12 + "-" + "2" * 12,
        "1" * 12,
        "0123456789012345abc",
        "..--::",
    ],
)
def test_keys_of_words_uuids_and_short_numbers_are_accepted(key: str) -> None:
    assert RefundCreate(idempotency_key=key).idempotency_key == key


@pytest.mark.parametrize(
    "key",
    [
        "1" * 13,  # the shortest card number's length, Luhn-valid or not
        "order-4242424242424242",
        "x-4242424242424241.y",
        "a:1234567890123",
        "42424242424242421228123",
        "",
        "a" * 256,
        "order 1042",
        "order/1042",
    ],
)
def test_keys_with_a_long_all_digit_segment_or_out_of_shape_are_refused(key: str) -> None:
    with pytest.raises(ValidationError):
        RefundCreate(idempotency_key=key)
