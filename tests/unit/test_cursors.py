import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from payments.api.pagination import InvalidCursor, decode_cursor, encode_cursor

EXTREMES = [
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T13:59:59+14:00",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T10:00:01-14:00",
]


def raw_cursor(created: str, row_id: str = "tx_1") -> str:
    return base64.urlsafe_b64encode(json.dumps([created, row_id]).encode()).decode()


@pytest.mark.parametrize("created", EXTREMES)
def test_a_timestamp_outside_the_range_in_utc_is_an_invalid_cursor(created: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(raw_cursor(created))


def test_a_cursor_we_handed_out_comes_back_in_utc() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=14)))
    decoded, row_id = decode_cursor(encode_cursor(at, "tx_1"))
    assert decoded == at and decoded.tzinfo == UTC and row_id == "tx_1"
    assert decode_cursor(raw_cursor("0001-01-01T00:00:00+00:00"))[0] == datetime(1, 1, 1, tzinfo=UTC)
