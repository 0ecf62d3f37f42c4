"""The emulator's state: Stripe objects by id and by type (in creation order), counters, and an
optional SQLite file so the emulator survives its own restart.

History loaded in bulk (a benchmark's million payments, or the state file at a restart) is kept as
its JSON until something changes it: a payment's four objects (its PaymentIntent, the event
about it, its charge, its balance transaction) take 22 KB as dicts and 6.5 KB as JSON, and the
1,000,000-payment window held 22.4 GiB of a 24 GiB machine as dicts, starving PostgreSQL's cache.
Lists and expansions read such an object without keeping the parsed copy (`peek`); a handler's
`get` parses it for good, so the object it changes is the stored one, as with any other."""

from __future__ import annotations

import gc
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

Obj = dict[str, Any]


def _settled() -> None:
    """History loaded in bulk lives as long as the emulator: out of the collector's scans. Its
    indexes (millions of ids, positions, creation times) would otherwise be walked by every full
    collection, which parsing a page of history sets off every few pages."""
    gc.freeze()


class Store:
    def __init__(self, path: Path | None = None) -> None:
        self._objects: dict[str, Obj | bytes] = {}  # bytes: bulk-loaded, as its JSON
        self._by_type: dict[str, list[str]] = defaultdict(list)
        # By kind, beside its ids: each object's `created` and `type`, which lists filter on unread.
        self._created: dict[str, list[int]] = defaultdict(list)
        self._types: dict[str, list[str | None]] = defaultdict(list)
        self._position: dict[str, int] = {}
        self.counters: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False) if path else None
        if self._db:
            # Survives the emulator's own crash, not a power cut: enough for a local stand-in.
            self._db.execute("PRAGMA journal_mode=wal")
            self._db.execute("PRAGMA synchronous=normal")
            self._db.execute("CREATE TABLE IF NOT EXISTS objects (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, body TEXT)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS counters (name TEXT, key TEXT, n INTEGER, PRIMARY KEY (name, key))"
            )
            self._load()
            _settled()

    @property
    def db(self) -> sqlite3.Connection | None:
        """The state file, for other state that must survive a restart (idempotency keys)."""
        return self._db

    def _load(self) -> None:
        assert self._db is not None
        for (body,) in self._db.execute("SELECT body FROM objects ORDER BY seq"):
            self._index(orjson.loads(body), body.encode() if isinstance(body, str) else bytes(body))
        for name, key, n in self._db.execute("SELECT name, key, n FROM counters"):
            self.counters[name][key] = n

    def _index(self, obj: Obj, kept: Obj | bytes) -> None:
        """`kept`: the object, or its JSON."""
        kind, created, type_ = obj["object"], obj.get("created", 0), obj.get("type")
        if obj["id"] not in self._objects:
            ids = self._by_type[kind]
            self._position[obj["id"]] = len(ids)
            ids.append(obj["id"])
            self._created[kind].append(created)
            self._types[kind].append(type_)
        else:
            position = self._position[obj["id"]]
            self._created[kind][position], self._types[kind][position] = created, type_
        self._objects[obj["id"]] = kept

    def put(self, obj: Obj) -> Obj:
        """Insert or replace; the object keeps its place in its type's creation order."""
        self._index(obj, obj)
        if self._db:
            self._db.execute(
                "INSERT INTO objects (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                (obj["id"], orjson.dumps(obj)),
            )
        return obj

    def put_many(self, objects: list[Obj]) -> None:
        """Insert a batch of history, kept as its JSON, in one SQLite transaction (bulk seeding).
        The objects given are not the stored ones from then on: `get` returns those."""
        # orjson's answer keeps the 32 KiB it was written in, whatever its length: kept, a copy.
        bodies = [bytes(memoryview(orjson.dumps(obj))) for obj in objects]
        for obj, body in zip(objects, bodies, strict=True):
            self._index(obj, body)
        if self._db:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT INTO objects (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                    [(obj["id"], body) for obj, body in zip(objects, bodies, strict=True)],
                )
        _settled()

    def get(self, object_id: str) -> Obj | None:
        """The stored object, to read or to change (then `put`)."""
        kept = self._objects.get(object_id)
        if isinstance(kept, bytes):
            kept = self._objects[object_id] = orjson.loads(kept)
        return kept

    def embedded(self, object_id: str) -> Obj | orjson.Fragment | None:
        """The object to place as it is inside an answer (an expanded field): history kept as JSON
        goes in as that JSON, never parsed."""
        kept = self._objects.get(object_id)
        return orjson.Fragment(kept) if isinstance(kept, bytes) else kept

    def peek(self, object_id: str) -> Obj | None:
        """The object to read only (a list's page, an expansion): history kept as JSON is parsed
        for the caller and stays JSON."""
        kept = self._objects.get(object_id)
        return orjson.loads(kept) if isinstance(kept, bytes) else kept

    def delete(self, object_id: str) -> bool:
        """Out-of-band removal (to make 'missing at Stripe' cases); lists skip removed ids."""
        removed = self._objects.pop(object_id, None)
        if removed and self._db:
            self._db.execute("DELETE FROM objects WHERE id = ?", (object_id,))
        return removed is not None

    def ids_of(self, kind: str) -> list[str]:
        return self._by_type[kind]

    def position(self, object_id: str) -> int | None:
        return self._position.get(object_id)

    def created(self, kind: str, position: int) -> int:
        """When the object at this place of its kind's creation order was created."""
        return self._created[kind][position]

    def type_at(self, kind: str, position: int) -> str | None:
        """The `type` field (an event's, a balance transaction's) of the object at this place."""
        return self._types[kind][position]

    def count(self, name: str, key: str) -> None:
        self.counters[name][key] += 1
        if self._db:
            self._db.execute(
                "INSERT INTO counters VALUES (?, ?, 1) ON CONFLICT (name, key) DO UPDATE SET n = n + 1", (name, key)
            )

    def reset(self) -> None:
        self._objects.clear()
        self._by_type.clear()
        self._created.clear()
        self._types.clear()
        self._position.clear()
        self.counters.clear()
        if self._db:
            self._db.execute("DELETE FROM objects")
            self._db.execute("DELETE FROM counters")
