"""The PAN guard: a request that carries anything shaped like a card number is refused unread.

We stay out of PCI scope only while a card number never reaches us, so anything that
config.card_numbers recognises, anywhere in the body or query string, is answered 400
`card_data_rejected`; the body is neither parsed, logged nor stored.
"""

from __future__ import annotations

import json

import structlog
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import CardDataRejected, PayloadTooLarge
from config.card_numbers import contains_card_number

MAX_BODY_BYTES = 1_000_000
log = structlog.get_logger(__name__)


def _unescaped(body: str) -> str:
    """JSON can spell digits as \\u0034; look at the decoded strings too."""
    try:
        return json.dumps(json.loads(body), ensure_ascii=False)
    except ValueError:
        return ""


def request_carries_card_number(body: bytes, query_string: bytes) -> bool:
    text = body.decode("utf-8", errors="replace")
    return any(contains_card_number(part) for part in (text, _unescaped(text), query_string.decode("latin-1")) if part)


def _refusal(scope: Scope, error: CardDataRejected | PayloadTooLarge) -> JSONResponse:
    request_id = scope.get("state", {}).get("request_id", "")
    return JSONResponse(
        {"error": {"code": error.code, "message": error.message, "request_id": request_id}},
        status_code=error.status,
    )


class CardDataGuardMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _refusal(scope, PayloadTooLarge())(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)

        if request_carries_card_number(body, scope.get("query_string", b"")):
            log.warning("card_data_rejected", path=scope["path"], method=scope["method"])
            await _refusal(scope, CardDataRejected())(scope, receive, send)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
