import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import structlog

from payments.config.logs import REDACTED, configure_logging, log_stream, scrub_text


def test_tokens_secrets_and_card_numbers_are_scrubbed_from_text() -> None:
    text = "tok_visa pm_card_visa sk_test_abc whsec_x Bearer eyJhbGciOi.eyJzdWIi.sig 4242424242424242"
    scrubbed = scrub_text(text)
    for secret in ("tok_visa", "pm_card_visa", "sk_test_abc", "whsec_x", "eyJhbGciOi", "4242424242424242"):
        assert secret not in scrubbed
    assert scrubbed.count(REDACTED) == 6


def test_failure_codes_and_ids_are_kept() -> None:
    text = "card_declined for tx_0a1b2c merchant mer_9 request req_ddb18e28ad794675845404034f911a70"
    assert scrub_text(text) == text


@contextmanager
def suite_logging_kept() -> Iterator[None]:
    """The suite's logging (its stream, level and structlog's pipeline) back after the test's own."""
    root = logging.getLogger()
    handlers, level, config, stream = root.handlers[:], root.level, structlog.get_config(), log_stream()
    try:
        yield
    finally:
        configure_logging("INFO", json=True, stream=stream)
        root.handlers, root.level = handlers, level
        structlog.configure(**config)


@pytest.fixture(params=["INFO"])
def captured_logs(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    with suite_logging_kept():
        configure_logging(request.param, json=True, stream=stream)
        yield stream


def test_structlog_and_stdlib_lines_are_scrubbed_and_json(captured_logs: io.StringIO) -> None:
    stream = captured_logs
    structlog.get_logger("t").info("charging", card_token="tok_visa", note="pan 4242424242424242")
    logging.getLogger("third.party").warning("leaked sk_test_123 in a library message")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["logger"] for line in lines] == ["t", "third.party"]
    assert lines[0]["card_token"] == REDACTED
    assert "4242424242424242" not in lines[0]["note"]
    assert "sk_test_123" not in lines[1]["event"]


@pytest.mark.parametrize("captured_logs", ["WARNING"], indirect=True)
def test_below_the_level_nothing_is_written_and_above_it_still_scrubbed(captured_logs: io.StringIO) -> None:
    log = structlog.get_logger("t")
    assert not log.is_enabled_for(logging.INFO)  # dropped before the processors run, not after
    log.info("request", path="/payments/init")
    log.warning("card_data_rejected", note="pan 4242424242424242")
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["card_data_rejected"]
    assert "4242424242424242" not in lines[0]["note"] and lines[0]["level"] == "warning"


def test_the_stripe_sdks_request_lines_are_not_logged_but_its_warnings_would_be(captured_logs: io.StringIO) -> None:
    from stripe import _util

    _util.log_info("Request to Stripe api", method="post", url="http://stripe/v1/payment_intents")
    logging.getLogger("stripe").warning("a warning of the SDK's")
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["a warning of the SDK's"]


def test_a_logger_cached_at_its_first_use_writes_where_the_latest_configuration_says() -> None:
    first, second = io.StringIO(), io.StringIO()
    with suite_logging_kept():
        configure_logging("INFO", json=True, stream=first)
        log = structlog.get_logger("cached")
        log.info("one", note="pan 4242424242424242")  # cached here, with the first stream
        configure_logging("INFO", json=True, stream=second)
        log.info("two", note="pan 4242424242424242")
    assert [json.loads(line)["event"] for line in first.getvalue().splitlines()] == ["one"]
    (line,) = [json.loads(line) for line in second.getvalue().splitlines()]
    assert line["event"] == "two" and "4242424242424242" not in line["note"]


def test_a_stream_that_cannot_be_written_drops_the_line_instead_of_failing_the_caller(
    captured_logs: io.StringIO,
) -> None:
    captured_logs.close()
    structlog.get_logger("t").info("lost")  # a closed stream: ValueError, swallowed
