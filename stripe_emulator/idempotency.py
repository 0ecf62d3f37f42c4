"""Idempotency as Stripe documents it: same key and parameters replay the first response (errors
too); other parameters are a 400 `idempotency_error`; a request racing one in flight gets 409."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field

from stripe_emulator.wire import StripeError


@dataclass
class Stored:
    fingerprint: str
    created: float
    done: asyncio.Event = field(default_factory=asyncio.Event)
    status: int = 0
    body: bytes = b""


class IdempotencyStore:
    def __init__(self, ttl_seconds: float = 24 * 3600) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[tuple[str, str], Stored] = {}

    @staticmethod
    def fingerprint(method: str, path: str, body: bytes) -> str:
        return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()

    def begin(self, api_key: str, key: str, fingerprint: str) -> Stored | None:
        """None: this request owns the key and must `finish` it. Otherwise the earlier response."""
        self._expire()
        entry = self._entries.get((api_key, key))
        if entry is None:
            self._entries[(api_key, key)] = Stored(fingerprint, time.monotonic())
            return None
        if entry.fingerprint != fingerprint:
            raise StripeError(
                400,
                "idempotency_error",
                f"Keys for idempotent requests can only be used with the same parameters they were first "
                f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
            )
        if not entry.done.is_set():
            raise StripeError(
                409,
                "idempotency_error",
                "There is currently another in-progress request using this Idempotent Key "
                "(that probably means you submitted twice, and the other request is still going through).",
                "idempotency_key_in_use",
            )
        return entry

    def in_flight(self, api_key: str, key: str) -> bool:
        """A request holds this key and has not answered yet."""
        entry = self._entries.get((api_key, key))
        return entry is not None and not entry.done.is_set()

    def finish(self, api_key: str, key: str, status: int, body: bytes) -> None:
        entry = self._entries[(api_key, key)]
        entry.status, entry.body = status, body
        entry.done.set()

    def abandon(self, api_key: str, key: str) -> None:
        """A request that never produced a response (crashed) frees its key."""
        self._entries.pop((api_key, key), None)

    def clear(self) -> None:
        self._entries.clear()

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.ttl
        for k in [k for k, e in self._entries.items() if e.created < cutoff and e.done.is_set()]:
            del self._entries[k]
