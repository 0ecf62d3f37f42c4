"""Finding card numbers (PANs) in text the way a person might type one: 13 to 19 digits that pass
the Luhn check, in any Unicode form (NFKC, so fullwidth digits count), with any separators
between the digits (spaces of any kind, tabs, dots, dashes, slashes, underscores, repeated), glued
to letters or not. A run of digit groups is also searched group by group, so a card number with
another number typed after it is still found.

Long hexadecimal tokens (uuid hex, request ids, signatures) are left out: they are machine ids
whose digit runs would be false alarms. Used by the API's PAN guard and by the log scrubber."""

from __future__ import annotations

import re
import unicodedata

MIN_DIGITS, MAX_DIGITS = 13, 19
_SEPARATOR = r"[\s._/\-\u2010-\u2015\u2212]"
_RUN = re.compile(rf"[0-9](?:{_SEPARATOR}*[0-9])*")
_GROUP = re.compile(r"[0-9]+")
_HEX_ID = re.compile(
    r"(?<![0-9A-Za-z])(?:[0-9a-f]{24,}|[0-9A-F]{24,}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})(?![0-9A-Za-z])"
)


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


def _masked(folded: str) -> str:
    """Machine ids blanked out, keeping every other character where it was."""
    return _HEX_ID.sub(lambda m: " " * len(m.group()), folded)


def _holds_card_number(run: str) -> bool:
    """Any span of whole digit groups with 13-19 digits that passes Luhn."""
    groups = _GROUP.findall(run)
    for start in range(len(groups)):
        digits = ""
        for group in groups[start:]:
            digits += group
            if len(digits) > MAX_DIGITS:
                break
            if len(digits) >= MIN_DIGITS and luhn_valid(digits):
                return True
    return False


def _card_spans(folded: str) -> list[tuple[int, int]]:
    return [m.span() for m in _RUN.finditer(_masked(folded)) if _holds_card_number(m.group())]


def contains_card_number(text: str) -> bool:
    return bool(_card_spans(unicodedata.normalize("NFKC", text)))


def redact_card_numbers(text: str, replacement: str) -> str:
    """The text with every card number replaced; a text without one comes back unchanged."""
    folded = unicodedata.normalize("NFKC", text)
    spans = _card_spans(folded)
    if not spans:
        return text
    for start, end in reversed(spans):
        folded = folded[:start] + replacement + folded[end:]
    return folded
