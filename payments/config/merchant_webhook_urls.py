"""Where a merchant's webhook may point. Outside development: https only, and never at loopback,
link-local, private, unspecified, multicast or reserved addresses (server-side request forgery:
an endpoint must not make us call our own network). The hostname is resolved and every address
checked, when the endpoint is saved and again before each delivery (the name may move), and the
delivery connects to an address so checked, never to a second lookup's answer."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
RESOLVE_SECONDS = 5.0


class UnsafeWebhookUrl(ValueError):
    """The URL is malformed, or points where webhooks must not go; the message says which."""


# IPv6 ranges that reach IPv4 hosts through a translator we may sit behind (RFC 6052, RFC 8215).
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # ::a.b.c.d, deprecated but still routed by some stacks


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, 6to4, Teredo)."""
    embedded = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
    if ip in IPV4_COMPATIBLE:
        embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [address for address in embedded if address is not None]


def _forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not ip.is_global or ip.is_multicast or ip.is_reserved


def forbidden_address(address: str) -> bool:
    """Not a public unicast address, in any of its forms: NAT64 is refused whole (it reaches IPv4
    hosts of the translator's choosing), and an IPv6 form that carries an IPv4 address is judged by it."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone id is not part of the address
    if isinstance(ip, ipaddress.IPv4Address):
        return _forbidden(ip)
    if any(ip in network for network in NAT64):
        return True
    embedded = _embedded_ipv4(ip)
    return any(_forbidden(v4) for v4 in embedded) or (not embedded and _forbidden(ip))


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


Resolver = Callable[[str], Awaitable[list[str]]]


async def resolve(host: str) -> list[str]:
    """The system resolver's addresses for `host` (bounded in time)."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_SECONDS):
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError):
        raise UnsafeWebhookUrl("The URL's host does not resolve.") from None
    return [str(info[4][0]) for info in infos]


async def check_webhook_url(url: str, development: bool, resolver: Resolver = resolve) -> list[str]:
    """Raise UnsafeWebhookUrl unless webhooks may be sent to `url`; return the addresses checked,
    the only ones a delivery may connect to (a second lookup could answer otherwise: DNS
    rebinding). Development allows any http(s) host, and returns no addresses (connect by name)."""
    host = url_host(url, development)
    if development:
        return []
    addresses = await resolver(host)
    if not addresses or any(forbidden_address(address) for address in addresses):
        raise UnsafeWebhookUrl("The URL must not point at a loopback, link-local or private address.")
    return addresses
