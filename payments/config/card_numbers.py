"""Finding card numbers (PANs) in text the way card data leaks into real logs: 13 to 19 digits that
pass the Luhn check, in any Unicode form (NFKC, so fullwidth digits count), with invisible format
characters (zero-width spaces, soft hyphens: Unicode category Cf) removed first, with any short run
of non-alphanumeric characters between digit groups (spaces, dots, dashes, colons, commas...),
glued to letters or not. A run of digit groups is also searched group by group, so a card number
with another number typed after it is still found, and a digit run holding a card number followed
at once by its expiry (MMYY or MMYYYY) and security code is found too.

Machine ids are left out: our own ids and request ids (a prefix and a uuid's 32 hex digits), uuids,
and ISO timestamps, whose digit runs would be false alarms. In other hexadecimal tokens only the
digit runs that could hide a card number glued to hex-looking letters are kept: a run at either end
of the token, or one of 16 digits or more. Used by the API's PAN guard and by the log scrubber."""

from __future__ import annotations

import re
import unicodedata

MIN_DIGITS, MAX_DIGITS = 13, 19
MAX_SEPARATOR = 3  # characters between two digit groups of one number
HIDDEN_RUN = 16  # a digit run this long inside a foreign hex token is scanned all the same
_RUN = re.compile(rf"[0-9](?:[\W_]{{0,{MAX_SEPARATOR}}}[0-9])*")
_GROUP = re.compile(r"[0-9]+")
_EXPIRY_AND_CODE = re.compile(r"(?:0[1-9]|1[0-2])(?:20)?[0-9]{2}(?:[0-9]{3,4})?")
_MACHINE_ID = re.compile(
    r"(?<![0-9A-Za-z])(?:(?<=_)[0-9a-f]{32}"  # our ids and request ids: prefix_ + uuid4().hex
    r"|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"  # uuids
    r"|[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
    r"|[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?"  # times of day
    r")(?![0-9A-Za-z])"
)
_HEX_TOKEN = re.compile(r"(?<![0-9A-Za-z])(?:[0-9a-f]{24,}|[0-9A-F]{24,})(?![0-9A-Za-z])")


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


def _visible(text: str) -> str:
    """NFKC, without the format characters a reader never sees. ASCII is already both (the common
    case, and the guard's largest cost without this shortcut)."""
    if text.isascii():
        return text
    return "".join(char for char in unicodedata.normalize("NFKC", text) if unicodedata.category(char) != "Cf")


def _blank(text: str) -> str:
    return "x" * len(text)  # a letter: it ends a digit run, as the id did


def _hex_token_kept_runs(token: str) -> str:
    """A foreign hex token with its letters and short inner digit runs blanked."""

    def keep(run: re.Match[str]) -> str:
        at_edge = run.start() == 0 or run.end() == len(token)
        return run.group() if at_edge or len(run.group()) >= HIDDEN_RUN else _blank(run.group())

    return re.sub(r"[0-9]+|[^0-9]+", lambda m: keep(m) if m.group()[0].isdigit() else _blank(m.group()), token)


def _masked(folded: str) -> str:
    """Machine ids blanked out, keeping every other character where it was."""
    folded = _MACHINE_ID.sub(lambda m: _blank(m.group()), folded)
    return _HEX_TOKEN.sub(lambda m: _hex_token_kept_runs(m.group()), folded)


_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # a digit's Luhn value when it is doubled


def _with_expiry_and_code(digits: str) -> bool:
    """One digit run: a card number followed at once by its expiry (MMYY or MMYYYY) and code."""
    return any(
        _EXPIRY_AND_CODE.fullmatch(digits[length:]) and luhn_valid(digits[:length])
        for length in range(MIN_DIGITS, min(MAX_DIGITS, len(digits) - 4) + 1)
    )


def _holds_card_number(run: str) -> bool:
    """Any span of whole digit groups that is a card number, or one digit group holding a card
    number and its expiry. Luhn sums grow digit by digit (both parities kept, since which digits
    are doubled depends on the final length), so a run costs at most 19 steps per group."""
    groups = _GROUP.findall(run)
    if any(MAX_DIGITS < len(group) <= MAX_DIGITS + 10 and _with_expiry_and_code(group) for group in groups):
        return True
    for start in range(len(groups)):
        evens_doubled = odds_doubled = length = 0
        for group in groups[start : start + MAX_DIGITS]:
            for char in group:
                digit = ord(char) - 48
                if length % 2:
                    evens_doubled, odds_doubled = evens_doubled + digit, odds_doubled + _DOUBLED[digit]
                else:
                    evens_doubled, odds_doubled = evens_doubled + _DOUBLED[digit], odds_doubled + digit
                length += 1
            if length > MAX_DIGITS:
                break
            total = odds_doubled if length % 2 else evens_doubled  # the last digit is never doubled
            if length >= MIN_DIGITS and total % 10 == 0:
                return True
    return False


def _card_spans(folded: str) -> list[tuple[int, int]]:
    if sum(map(folded.count, "0123456789")) < MIN_DIGITS:
        return []  # most texts (headers, names, amounts): too few digits to hold a card number
    return [m.span() for m in _RUN.finditer(_masked(folded)) if _holds_card_number(m.group())]


def contains_card_number(text: str) -> bool:
    return bool(_card_spans(_visible(text)))


def redact_card_numbers(text: str, replacement: str) -> str:
    """The text with every card number replaced; a text without one comes back unchanged."""
    folded = _visible(text)
    spans = _card_spans(folded)
    if not spans:
        return text
    for start, end in reversed(spans):
        folded = folded[:start] + replacement + folded[end:]
    return folded
