"""Where a merchant's webhook may point. Outside development: https only, and never at loopback,
link-local, private, unspecified, multicast or reserved addresses (server-side request forgery:
an endpoint must not make us call our own network). The hostname is resolved and every address
checked, when the endpoint is saved and again before each delivery (the name may move)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
RESOLVE_SECONDS = 5.0


class UnsafeWebhookUrl(ValueError):
    """The URL is malformed, or points where webhooks must not go; the message says which."""


def forbidden_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone id is not part of the address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_unspecified or ip.is_multicast or ip.is_reserved


def url_host(url: str, development: bool) -> str:
    """The URL's host, once its shape is acceptable: a scheme we send to, a host, no credentials."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeWebhookUrl(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (parses the port: a bad one raises here)
    except ValueError:
        raise UnsafeWebhookUrl("The URL is malformed.") from None
    allowed = ("https", "http") if development else ("https",)
    if parts.scheme not in allowed:
        raise UnsafeWebhookUrl("The URL must use https." if not development else "The URL must use http or https.")
    if not parts.hostname or any(c.isspace() for c in url):
        raise UnsafeWebhookUrl("The URL must name a host.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeWebhookUrl("The URL must not hold credentials.")
    return parts.hostname


async def _addresses(host: str) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_SECONDS):
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError):
        raise UnsafeWebhookUrl("The URL's host does not resolve.") from None
    return [str(info[4][0]) for info in infos]


async def check_webhook_url(url: str, development: bool) -> None:
    """Raise UnsafeWebhookUrl unless webhooks may be sent to `url` (development allows any http(s) host)."""
    host = url_host(url, development)
    if development:
        return
    addresses = await _addresses(host)
    if not addresses or any(forbidden_address(address) for address in addresses):
        raise UnsafeWebhookUrl("The URL must not point at a loopback, link-local or private address.")
