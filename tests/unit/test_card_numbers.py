import time

import pytest

from payments.config.card_numbers import contains_card_number, luhn_valid, redact_card_numbers

PAN = "4242424242424242"


@pytest.mark.parametrize("pan", [PAN, "5555555555554444", "378282246310005", "6011111111111117"])
def test_known_test_cards_pass_luhn(pan: str) -> None:
    assert luhn_valid(pan)


def test_a_changed_digit_fails_luhn() -> None:
    assert not luhn_valid("4242424242424241")


@pytest.mark.parametrize(
    "text",
    [
        '{"note": "4242424242424242"}',
        '{"amount": 4242424242424242}',
        "card 4242 4242 4242 4242 thanks",
        "4242-4242-4242-4242",
        "prefix:378282246310005;",
        "4242.4242.4242.4242",
        "4242\u00a04242\u00a04242\u00a04242",  # no-break spaces
        "4242  4242  4242  4242",
        "4242\t4242\t4242\t4242",
        "4242/4242/4242/4242",
        "4242_4242_4242_4242",
        "4242\u20134242\u20134242\u20134242",  # en-dash
        "\uff14\uff12\uff14\uff12" * 4,  # fullwidth digits
        "card4242424242424242",
        "Ada4242424242424242xyz",
        "4242 4242 4242 4242 7",  # another number typed after it
        "12 4242 4242 4242 4242",
        "4242:4242:4242:4242",  # any short run of punctuation between groups
        "4242,4242,4242,4242",
        "4242*#4242*#4242*#4242",
        "(4242)(4242)(4242)(4242)",
        "4242\u200b4242\u200b4242\u200b4242",  # zero-width space
        "4242424242\u2060424242",  # word joiner inside a group
        "4242\u00ad4242\u00ad4242\u00ad4242",  # soft hyphens
        "4242\ufeff4242\u200d4242\u200c4242",  # other format characters
        "42424242424242421228123",  # card number, expiry and code in one run
        "4242424242424242122028",  # card number and MMYYYY expiry
        "37828224631000504291234",  # 15 digits, expiry, 4-digit code
        "4242424242424242deadbeefdeadbeef",  # glued to hex-looking letters
        "deadbeefdeadbeefcafe4242424242424242",
        "ab12cd4242424242424242ab12cdabcdef0123456789",  # a long run inside a hex token
        "id-aaaaaaaaaaaaaaaaaaaaaaaaa4242424242424242",
    ],
)
def test_card_numbers_are_found_however_they_are_typed(text: str) -> None:
    assert contains_card_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "4242424242424241",  # fails Luhn
        "424242424242",  # 12 digits: too short
        "42424242424242424242",  # 20 digits: too long
        "req_ddb18e28ad794675845404034f911a70",  # Luhn-valid run inside a hex id
        "550e8400-e29b-41d4-a716-446655440000",
        "amount 1000 at 2026-11-24T05:41:45Z",
        "at 2026-11-24 05:41:45.123456+00:00",
        "2026-11-24T05:41:45.123456+00:00",
        "tx_0123456789012ab34567890123456789",  # our ids: prefix and uuid hex
        "+1 (555) 123-4567",
        "+44 20 7946 0958",
        "424242424242424242421234567",  # a long number whose tail is no expiry
        "[100, 200, 300]",
    ],
)
def test_ids_timestamps_and_short_numbers_are_not_card_numbers(text: str) -> None:
    assert not contains_card_number(text)


def test_redaction_replaces_only_the_card_number() -> None:
    assert redact_card_numbers("paid with 4242424242424242 ok", "[x]") == "paid with [x] ok"
    assert redact_card_numbers("paid with 4242.4242.4242.4242 ok", "[x]") == "paid with [x] ok"


def test_a_line_without_a_card_number_keeps_its_exact_characters() -> None:
    line = "req_ddb18e28ad794675845404034f911a70 \uff21"
    assert redact_card_numbers(line, "[x]") == line


def test_a_body_of_tiny_digit_groups_is_scanned_in_linear_time() -> None:
    """256 KiB of one-digit groups (the guard's bound): every span of whole groups is a candidate,
    so a scan that restarts its Luhn sum per span took tens of seconds of an unauthenticated CPU."""
    started = time.process_time()
    assert not contains_card_number("1 " * 131_072)
    assert time.process_time() - started < 5
