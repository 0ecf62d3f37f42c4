"""The edge guard: a request is refused unread when it carries a card number anywhere the
application will look (the path, the query, any header, the JSON body as the parser decodes it),
when its body is not UTF-8, or when its JSON is nested deeper than any of our bodies need.

We stay out of PCI scope only while a card number never reaches us, so what config.card_numbers
recognises is answered 400 `card_data_rejected`; the body is neither parsed further, logged nor
stored. Signed Stripe webhooks are exempt once their signature verifies: Stripe never sends a card
number, and a phone number in an event must not lose the event.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payments.api.errors import (
    ApiError,
    CardDataRejected,
    NestedTooDeep,
    NulCharacter,
    PayloadTooLarge,
    UnsupportedMediaType,
    refusal_response,
)
from payments.api.stripe_signature import STRIPE_WEBHOOK_PATH, request_signed_by_stripe
from payments.config.card_numbers import contains_card_number

# The largest legitimate body is dispute evidence: 20,000 characters, at most 12 bytes each when
# JSON-escaped (a surrogate pair), so 240 kB; Stripe's events for our objects are a few kB.
MAX_BODY_BYTES = 256 * 1024
MAX_JSON_DEPTH = 32
# Headers whose well-formed values are ids and digests of random hex: a trace context's span id
# (16 characters) and Stripe's signatures (64 each, after a timestamp) hold a Luhn-valid digit run
# now and then, and refusing them would refuse a genuine request. Anything else in them is scanned.
RANDOM_HEX_HEADERS = {
    b"traceparent": re.compile(rb"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}"),
    b"stripe-signature": re.compile(rb"t=[0-9]{1,12}(?:,v[01]=[0-9a-f]{64})+"),
}
log = structlog.get_logger(__name__)


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects, counted without parsing (so without recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _decoded_body(body: bytes) -> str:
    """The body as text; only BOM-less UTF-8 is accepted, since the JSON parser would otherwise
    detect UTF-16 or UTF-32 on its own and read what this guard did not."""
    if json.detect_encoding(body) != "utf-8":
        raise UnsupportedMediaType()
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsupportedMediaType() from None


def _scalars(value: Any) -> Iterator[str]:
    """Every key, string and number of a decoded JSON document (its depth is already bounded)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    else:
        yield str(value)


def _body_texts(text: str) -> list[str]:
    """The raw text, and for JSON each decoded value (escapes such as \\u0034 or \\t resolved)."""
    if json_depth(text) > MAX_JSON_DEPTH:
        raise NestedTooDeep()
    try:
        return [text, *_scalars(json.loads(text))]
    except ValueError:
        return [text]  # not JSON: the route answers that; the raw text was still looked at


def _signed_webhook(scope: Scope, body: bytes, webhook_secret: str) -> bool:
    if scope["path"] != STRIPE_WEBHOOK_PATH:
        return False
    header = dict(scope["headers"]).get(b"stripe-signature", b"").decode("latin-1")
    return request_signed_by_stripe(scope, body, header, webhook_secret)


def _random_hex(name: bytes, value: bytes) -> bool:
    pattern = RANDOM_HEX_HEADERS.get(name)
    return pattern is not None and pattern.fullmatch(value) is not None


def inspect_request(scope: Scope, body: bytes, webhook_secret: str) -> None:
    """Raise the refusal for this request, if any."""
    query = scope.get("query_string", b"").decode("latin-1")
    texts = [scope["path"], query, unquote_plus(query)]
    texts += [value.decode("latin-1") for name, value in scope["headers"] if not _random_hex(name, value)]
    if body and not _signed_webhook(scope, body, webhook_secret):
        texts += _body_texts(_decoded_body(body))
    if any("\x00" in text for text in texts):
        raise NulCharacter()  # PostgreSQL cannot store it, and no id or name of ours holds one
    if any(contains_card_number(text) for text in texts):
        raise CardDataRejected()


class CardDataGuardMiddleware:
    def __init__(self, app: ASGIApp, webhook_secret: str, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.webhook_secret = webhook_secret
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await refusal_response(scope, PayloadTooLarge())(scope, receive, send)  # refused unread
            return
        chunks: list[bytes] = []  # a body without Content-Length (chunked) is bounded as it is read
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await refusal_response(scope, PayloadTooLarge())(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)

        try:
            inspect_request(scope, body, self.webhook_secret)
        except ApiError as refusal:
            log.warning(refusal.code, method=scope["method"], path=scope["path"])  # the log scrubs card numbers
            await refusal_response(scope, refusal)(scope, receive, send)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
