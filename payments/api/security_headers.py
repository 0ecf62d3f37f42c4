"""What protects browsers talking to us: the hosts we answer to, the response headers every answer
carries, and CORS for the codec server only."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payments.api.errors import UnknownHost, refusal_response

# The API serves JSON, its docs and the checkout page: nothing of ours may be framed. A route may
# send a stricter policy of its own (the checkout page's CSP also says what it may load).
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'; base-uri 'none'; object-src 'none'"),
    (b"referrer-policy", b"no-referrer"),
]
HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
DOCS_ASSETS = "/docs/assets/"
DOCS = ("/docs", "/redoc", "/openapi.json")


def _cache_control(path: str) -> bytes:
    """API data is never cached by a browser or proxy; the docs' pinned assets may be for an hour,
    their pages are revalidated (they change with each deployment)."""
    if path.startswith(DOCS_ASSETS):
        return b"public, max-age=3600"
    if path.startswith(DOCS):
        return b"no-cache"
    return b"no-store"


def _host_name(host: str) -> str:
    """`example.com:8000` -> `example.com`; `[::1]:8000` -> `[::1]`."""
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.split(":", 1)[0]


class AllowedHostsMiddleware:
    """Only our own host names are answered: a page of another site whose name resolves to us (DNS
    rebinding) must not reach the API, least of all the local codec server."""

    def __init__(self, app: ASGIApp, hosts: list[str]) -> None:
        self.app = app
        self.hosts = set(hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "*" not in self.hosts:
            if _host_name(Headers(scope=scope).get("host", "")) not in self.hosts:
                await refusal_response(scope, UnknownHost())(scope, receive, send)
                return
        await self.app(scope, receive, send)


class SecurityHeadersMiddleware:
    """`hsts_always`: behind a TLS-terminating proxy a request never arrives over TLS itself, so in
    production HSTS goes on every answer (a browser ignores it over plain HTTP)."""

    def __init__(self, app: ASGIApp, *, hsts_always: bool) -> None:
        self.app = app
        self.hsts_always = hsts_always

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(HEADERS)
        if self.hsts_always or scope.get("scheme") == "https":
            extra.append(HSTS)
        extra.append((b"cache-control", _cache_control(scope["path"])))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                own = {name.lower() for name, _ in headers}
                headers.extend(header for header in extra if header[0] not in own)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class CodecCorsMiddleware:
    """The Temporal UI's origin may call /codec from the browser; no other route is cross-origin."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Namespace", "X-Request-ID"],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/codec/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
