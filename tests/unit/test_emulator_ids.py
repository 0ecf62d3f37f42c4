"""The emulator's object ids must look like Stripe's: letters and digits mixed, never long runs of
digits. Hexadecimal ids once ended in 13 digits passing the Luhn check about once in 2,000
PaymentMethods, and the API's card-number guard then refused the checkout page's payment."""

import re
from collections import Counter

from payments.config.card_numbers import contains_card_number
from stripe_emulator.objects import new_id


def test_ids_are_a_prefix_and_24_base62_characters_as_stripe_s_are() -> None:
    assert re.fullmatch(r"pm_[0-9A-Za-z]{24}", new_id("pm"))


def test_no_id_looks_like_a_card_number_to_the_guard() -> None:
    ids = [new_id("pm") for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert [found for found in ids if contains_card_number(found)] == []


def test_every_position_takes_each_of_the_62_characters_about_as_often() -> None:
    """The characters are the base-62 digits of one random number: with fewer bits than 62**24
    needs, the last position never shows some characters; with barely enough (143), its first
    few come about twice as often as the others."""
    ids = [new_id("pm")[3:] for _ in range(31_000)]  # 500 of each character expected per position
    for position in range(24):
        seen = Counter(found[position] for found in ids)
        assert len(seen) == 62 and max(seen.values()) < 1.6 * min(seen.values()), position
