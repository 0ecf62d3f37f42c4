"""Finding card numbers (PANs) in text: a Luhn-valid run of 13 to 19 digits, spaces or dashes
allowed between digits, standing on its own (not glued to letters or digits, so hex ids and
UUIDs do not trip it). Used by the API's PAN guard and by the log scrubber."""

from __future__ import annotations

import re

_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])[0-9](?:[ -]?[0-9]){12,18}(?![0-9A-Za-z])")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _is_card_number(match: re.Match[str]) -> bool:
    return luhn_valid(re.sub(r"[ -]", "", match.group()))


def contains_card_number(text: str) -> bool:
    return any(_is_card_number(m) for m in _CANDIDATE.finditer(text))


def redact_card_numbers(text: str, replacement: str) -> str:
    return _CANDIDATE.sub(lambda m: replacement if _is_card_number(m) else m.group(), text)
