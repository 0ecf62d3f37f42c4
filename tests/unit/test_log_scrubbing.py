import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from config.logs import REDACTED, configure_logging, scrub_text


def test_tokens_secrets_and_card_numbers_are_scrubbed_from_text() -> None:
    text = "tok_visa pm_card_visa sk_test_abc whsec_x Bearer eyJhbGciOi.eyJzdWIi.sig 4242424242424242"
    scrubbed = scrub_text(text)
    for secret in ("tok_visa", "pm_card_visa", "sk_test_abc", "whsec_x", "eyJhbGciOi", "4242424242424242"):
        assert secret not in scrubbed
    assert scrubbed.count(REDACTED) == 6


def test_failure_codes_and_ids_are_kept() -> None:
    text = "card_declined for tx_0a1b2c merchant mer_9 request req_ddb18e28ad794675845404034f911a70"
    assert scrub_text(text) == text


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    yield stream
    root.handlers, root.level = saved[0], saved[1]


def test_structlog_and_stdlib_lines_are_scrubbed_and_json(captured_logs: io.StringIO) -> None:
    stream = captured_logs
    structlog.get_logger("t").info("charging", card_token="tok_visa", note="pan 4242424242424242")
    logging.getLogger("third.party").warning("leaked sk_test_123 in a library message")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["card_token"] == REDACTED
    assert "4242424242424242" not in lines[0]["note"]
    assert "sk_test_123" not in lines[1]["event"]
