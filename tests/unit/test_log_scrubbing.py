import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from payments.config.logs import REDACTED, configure_logging, scrub_text


def test_tokens_secrets_and_card_numbers_are_scrubbed_from_text() -> None:
    text = "tok_visa pm_card_visa sk_test_abc whsec_x Bearer eyJhbGciOi.eyJzdWIi.sig 4242424242424242"
    scrubbed = scrub_text(text)
    for secret in ("tok_visa", "pm_card_visa", "sk_test_abc", "whsec_x", "eyJhbGciOi", "4242424242424242"):
        assert secret not in scrubbed
    assert scrubbed.count(REDACTED) == 6


def test_failure_codes_and_ids_are_kept() -> None:
    text = "card_declined for tx_0a1b2c merchant mer_9 request req_ddb18e28ad794675845404034f911a70"
    assert scrub_text(text) == text


@pytest.fixture(params=["INFO"])
def captured_logs(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level, structlog.get_config()
    stream = io.StringIO()
    configure_logging(request.param, json=True, stream=stream)
    yield stream
    root.handlers, root.level = saved[0], saved[1]
    structlog.configure(**saved[2])  # the suite's pipeline back: its stream and level


def test_structlog_and_stdlib_lines_are_scrubbed_and_json(captured_logs: io.StringIO) -> None:
    stream = captured_logs
    structlog.get_logger("t").info("charging", card_token="tok_visa", note="pan 4242424242424242")
    logging.getLogger("third.party").warning("leaked sk_test_123 in a library message")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
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


def test_the_stripe_sdks_request_lines_are_not_logged_but_its_warnings_are(captured_logs: io.StringIO) -> None:
    from stripe import _util

    _util.log_info("Request to Stripe api", method="post", url="http://stripe/v1/payment_intents")
    logging.getLogger("stripe").warning("Stripe is retrying a request")
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["Stripe is retrying a request"]
