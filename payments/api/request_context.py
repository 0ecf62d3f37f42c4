"""Request ids: taken from X-Request-ID when sane, otherwise made; echoed and bound to logs."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payments.api.metrics import observe_request

HEADER = "x-request-id"
_SANE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
log = structlog.get_logger("api.access")


def request_id_of(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


class RequestContextMiddleware:
    """Outermost middleware, so every response (errors included) carries the id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(HEADER.encode(), b"").decode("latin-1")
        request_id = given if _SANE.match(given) else f"req_{uuid.uuid4().hex}"
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((HEADER.encode(), request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            observe_request(scope, status, time.perf_counter() - started)
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
            structlog.contextvars.unbind_contextvars("request_id")
