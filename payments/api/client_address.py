"""The caller's address, for limiting callers we cannot yet name. Behind a load balancer the peer
is the proxy: its `X-Forwarded-For` is believed only when the peer is one of our trusted proxies
(`PAYMENTS_TRUSTED_PROXIES`), and then the caller is the right-most address not itself a trusted
proxy (what is left of it was written by the client and proves nothing)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def address_in(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(scope: Scope, trusted: Sequence[Network]) -> str:
    peer = scope["client"][0] if scope.get("client") else "unknown"
    if not address_in(peer, trusted):
        return peer
    forwarded = b",".join(value for name, value in scope["headers"] if name == b"x-forwarded-for")
    hops = [hop.strip() for hop in forwarded.decode("latin-1").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not address_in(hop, trusted):
            return hop
    return hops[0] if hops else peer  # every hop is ours: the first one is as near the client as we know
