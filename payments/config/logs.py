"""Structured logging (structlog) with a scrubber, so no secret or card data reaches a log line."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from contextlib import suppress
from typing import Any, TextIO, cast

import structlog
from temporalio.exceptions import ApplicationError

from payments.config.card_numbers import redact_card_numbers

# Values that must never be printed: Stripe payment tokens and secrets, bearer tokens and JWTs
# (card numbers are found by config.card_numbers).
_SECRET_PATTERNS = re.compile(
    r"\b(?:tok|pm|src|sk|rk|whsec|seti|pi_[A-Za-z0-9]+_secret)_[A-Za-z0-9_]+"
    r"|Bearer\s+[A-Za-z0-9\-_.=]+"
    r"|eyJ[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]*"
)
_SECRET_KEYS = {"card_token", "authorization", "password", "secret", "api_key", "token", "cookie"}
REDACTED = "[redacted]"
# Typed activity failures that are outcomes of the business, not faults: the workflow branches on them.
OUTCOMES = frozenset({"CardDeclined"})


def scrub_text(text: str) -> str:
    return redact_card_numbers(_SECRET_PATTERNS.sub(REDACTED, text), REDACTED)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {k: REDACTED if str(k).lower() in _SECRET_KEYS else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def scrub_event(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event.pop("color_message", None)  # uvicorn's ANSI-coloured copy of the message
    for key in list(event):
        event[key] = REDACTED if key.lower() in _SECRET_KEYS else _scrub(event[key])
    return event


class OutcomesAsOneLine(logging.Filter):
    """The SDK logs every failed activity as a warning with its traceback (chained: ours, then
    Stripe's). A declined card is an answer, not an error: one info line, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ApplicationError) and error.type in OUTCOMES:
            record.msg, record.args = f"{record.getMessage()}: {error.type}: {error.message}", None
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
            return logging.getLogger(record.name).isEnabledFor(logging.INFO)
        return True


class _LatestStream:
    """The stream the latest `configure_logging` chose. A structlog logger is cached at its first
    use (`cache_logger_on_first_use`), so it writes here, not to the stream of its day. A failed
    write (a closed or full stream) drops the line, as the stdlib's handlers do, instead of
    failing the request or activity that logged it."""

    stream: TextIO = sys.stderr

    def write(self, text: str) -> None:
        with suppress(OSError, ValueError):
            self.stream.write(text)

    def flush(self) -> None:
        with suppress(OSError, ValueError):
            self.stream.flush()


_LATEST = _LatestStream()


def log_stream() -> TextIO:
    """Where the lines go now: a test that configures its own puts this one back after."""
    return _LATEST.stream


class NamedWriteLogger(structlog.WriteLogger):
    """structlog's own writer, with the name it was asked for (`structlog.get_logger(__name__)`),
    which `add_logger_name` reads as it reads a stdlib logger's."""

    def __init__(self, name: str = "root") -> None:
        super().__init__(cast(TextIO, _LATEST))
        self.name = name


def configure_logging(level: str = "INFO", json: bool = True, stream: TextIO | None = None) -> None:
    """Route stdlib and structlog output through one scrubbing, structured pipeline. Our own
    (structlog) lines are rendered and written by structlog itself: through the stdlib's record,
    handler and formatter each line cost twice the CPU, and the API writes one a request. The
    stdlib's lines (libraries') take the same processors in a ProcessorFormatter."""
    out = _LATEST.stream = stream or sys.stderr
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        scrub_event,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    root = logging.getLogger()
    root.setLevel(level)
    structlog.configure(
        processors=[*shared, renderer],
        logger_factory=NamedWriteLogger,
        # A call below the level returns at once, before the processors (timestamp, scrubbing)
        # run for a line that would be dropped: at WARNING, every request's access line.
        wrapper_class=structlog.make_filtering_bound_logger(root.level),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(out)
    handler.addFilter(OutcomesAsOneLine())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root.handlers = [handler]
    # uvicorn's own access log would print raw paths and headers; we log requests ourselves.
    logging.getLogger("uvicorn.access").disabled = True
    # Alembic announces each of its plugins at INFO whenever it is imported: noise at every start.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # The Stripe SDK logs each request and its answer at INFO: four lines a payment of the worker's
    # CPU that say nothing Stripe's own request log does not (it keeps each call by its idempotency
    # key). A failed call still surfaces as its activity's failure, logged and in Temporal's history.
    logging.getLogger("stripe").setLevel(logging.WARNING)
