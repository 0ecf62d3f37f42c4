"""Users and merchants read through Redis: the API's questions about a party (does this user exist,
which currency does this merchant take, what is its payout account) skip PostgreSQL while an entry
lives. Never trusted for money: fees, balances and payment state are read from PostgreSQL in the
transaction that uses them. Every change, once committed (API and worker alike), replaces the entry
with a tombstone for `TOMBSTONE_SECONDS`; readers fill an entry only where there is none (SET NX),
so a reader that loaded the row before the change cannot put the old row back. An entry also
expires after `ttl_seconds`, which bounds what a change Redis missed leaves behind. Redis trouble is
a miss, never an error. Absent rows are not cached: a party created a moment ago is found at once."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payments.schema.driver import Statement, fetch_row
from payments.schema.tables import Merchant, User

Sessions = async_sessionmaker[AsyncSession]

TTL_SECONDS = 60
TOMBSTONE_SECONDS = 10  # longer than a reader takes between its PostgreSQL read and its SET
_TOMBSTONE = b"-"
# The keys' prefix, from when this was called the directory cache: kept, so that while a deploy runs
# the old release's processes beside the new one's, both read and tombstone the same entries.
_KEY_PREFIX = "directory"
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class UserEntry:
    id: str
    name: str


@dataclass(frozen=True)
class MerchantEntry:
    id: str
    name: str
    payout_account: str | None
    payout_schedule: str
    fee_bps: int  # for display: a capture reads the fee from PostgreSQL
    currency: str


def _row_of(table: Any, entry: type) -> Statement:
    """The entry's columns of the party's row, by id, on the driver's connection (a read alone)."""
    columns = [table.c[field.name] for field in dataclasses.fields(entry)]
    return Statement.of(select(*columns).where(table.c.id == bindparam("id")))


_USER = _row_of(User.__table__, UserEntry)
_MERCHANT = _row_of(Merchant.__table__, MerchantEntry)


@dataclass(frozen=True)
class PartiesRead:
    """A payment's user and merchant entries as one MGET found them (None: a miss)."""

    entries: list[dict[str, Any] | None]


def _key(kind: str, party_id: str) -> str:
    return f"{_KEY_PREFIX}:{kind}:{party_id}"


class PartyCache:
    """`redis` None: no cache (every lookup reads PostgreSQL). `counted(kind, hit)` is called on
    each lookup (the API counts the hit ratio in its metrics)."""

    def __init__(
        self,
        redis: Redis | None,
        ttl_seconds: int = TTL_SECONDS,
        counted: Callable[[str, bool], None] = lambda kind, hit: None,
    ) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._counted = counted

    async def merchant(self, sessions: Sessions, merchant_id: str) -> MerchantEntry | None:
        return await self._merchant(sessions, merchant_id, await self._get(_key("merchant", merchant_id)))

    async def payment_parties(
        self, sessions: Sessions, user_id: str, merchant_id: str, read: PartiesRead | None = None
    ) -> tuple[UserEntry | None, MerchantEntry | None]:
        """A payment's payer and merchant: both entries in one MGET (one command, one round trip),
        or as `read` found them."""
        if read is None:
            read = (await self.read_payment_parties(user_id, merchant_id))[1]
        user, merchant = read.entries
        return await self._user(sessions, user_id, user), await self._merchant(sessions, merchant_id, merchant)

    async def read_payment_parties(self, user_id: str, merchant_id: str, *also: str) -> tuple[list[Any], PartiesRead]:
        """The raw values of `also` (other keys of the same Redis, None for each when it fails) and
        the payment's party entries, all in one MGET: init reads its replay cache entry with them
        (without a Redis every value is None: a miss, as any Redis trouble is)."""
        keys = [*also, _key("user", user_id), _key("merchant", merchant_id)]
        raws = await self._mget(keys)
        return raws[: len(also)], PartiesRead(self._decoded(raws[len(also) :]))

    async def _user(self, sessions: Sessions, user_id: str, cached: dict[str, Any] | None) -> UserEntry | None:
        async def load() -> UserEntry | None:
            row = await fetch_row(sessions, _USER, {"id": user_id})
            return None if row is None else UserEntry(*row)

        fields = await self._read_through("user", user_id, load, cached)
        return None if fields is None else UserEntry(**fields)

    async def _merchant(
        self, sessions: Sessions, merchant_id: str, cached: dict[str, Any] | None
    ) -> MerchantEntry | None:
        async def load() -> MerchantEntry | None:
            row = await fetch_row(sessions, _MERCHANT, {"id": merchant_id})
            return None if row is None else MerchantEntry(*row)

        fields = await self._read_through("merchant", merchant_id, load, cached)
        return None if fields is None else MerchantEntry(**fields)

    async def forget_user(self, user_id: str) -> None:
        await self._forget(_key("user", user_id))

    async def forget_merchant(self, merchant_id: str) -> None:
        await self._forget(_key("merchant", merchant_id))

    async def _read_through(
        self, kind: str, party_id: str, load: Callable[[], Awaitable[Any]], cached: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """`cached`: the entry as read from Redis (None: a miss)."""
        self._counted(kind, cached is not None)
        if cached is not None:
            return cached
        entry = await load()
        if entry is None:
            return None
        fields = dataclasses.asdict(entry)
        await self._set(_key(kind, party_id), fields)
        return fields

    async def _get(self, key: str) -> dict[str, Any] | None:
        return (await self._get_many([key]))[0]

    async def _get_many(self, keys: list[str]) -> list[dict[str, Any] | None]:
        return self._decoded(await self._mget(keys))

    async def _mget(self, keys: list[str]) -> list[Any]:
        if self._redis is None:
            return [None] * len(keys)
        try:
            return list(await self._redis.mget(keys))
        except RedisError as exc:
            log.warning("party_cache_unavailable", error=type(exc).__name__)
            return [None] * len(keys)

    @staticmethod
    def _decoded(raws: list[Any]) -> list[dict[str, Any] | None]:
        return [None if raw is None or raw == _TOMBSTONE else dict(json.loads(raw)) for raw in raws]

    async def _set(self, key: str, fields: dict[str, Any]) -> None:
        if self._redis is None:
            return
        try:
            await self._redis.set(key, json.dumps(fields), ex=self._ttl, nx=True)
        except RedisError as exc:
            log.warning("party_cache_unavailable", error=type(exc).__name__)

    async def _forget(self, key: str) -> None:
        if self._redis is None:
            return
        try:
            await self._redis.set(key, _TOMBSTONE, ex=TOMBSTONE_SECONDS)
        except RedisError as exc:  # the entry lives out its TTL
            log.warning("party_cache_not_invalidated", key=key, error=type(exc).__name__)
