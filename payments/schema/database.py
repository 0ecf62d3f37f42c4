"""The async engine and session factory, from a plain PostgreSQL URL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import ColumnElement, String, event, literal_column
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool


def asyncpg_url(database_url: str) -> URL:
    """Accept `postgresql://…` (as operators write it) and select the asyncpg driver."""
    url = make_url(database_url)
    if url.drivername in ("postgres", "postgresql", "postgresql+asyncpg"):
        return url.set(drivername="postgresql+asyncpg")
    raise ValueError(f"unsupported database URL scheme {url.drivername!r}: expected postgresql://")


def create_engine(
    database_url: str,
    pool_size: int = 10,
    *,
    pool_timeout: float = 30.0,
    application_name: str | None = None,
    custom_plans: bool = False,
) -> AsyncEngine:
    """`application_name` names the connections in pg_stat_activity. A pooled connection that the
    server closed (PostgreSQL restarted, its backend was terminated) is replaced at checkout, so a
    request never meets it; see drop_closed_connections. `custom_plans`: every statement planned
    for its values and the tables as they are now, never from a plan cached when they were not
    (asyncpg prepares each statement, and PostgreSQL keeps a generic plan after five runs)."""
    server_settings = {"application_name": application_name} if application_name else {}
    if custom_plans:
        server_settings["plan_cache_mode"] = "force_custom_plan"
    engine = create_async_engine(
        asyncpg_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout,
        connect_args={"server_settings": server_settings},
    )
    event.listen(engine.sync_engine, "checkout", drop_closed_connections)
    return engine


def drop_closed_connections(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """At checkout, a connection whose server side has gone is refused, and the pool connects anew
    (SQLAlchemy's pessimistic disconnect handling). asyncpg marks a connection closed as soon as the
    event loop reads the server's goodbye or the socket's end, so asking costs no round trip, where
    pool_pre_ping tests each checkout with three (BEGIN, `;`, ROLLBACK): a third of the API's
    statements per payment."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def create_probe_engine(database_url: str) -> AsyncEngine:
    """A connection of its own per use: a health check asks whether PostgreSQL answers, and never
    queues behind busy requests for a pooled connection."""
    return create_async_engine(asyncpg_url(database_url), poolclass=NullPool)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def autocommitted(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session in autocommit: each statement its own transaction, with no BEGIN and COMMIT or
    ROLLBACK sent around it. For reads (under READ COMMITTED each statement takes its own snapshot
    anyway; reconciliation made two such round trips for each of its pages' queries) and for a
    write that is one statement deciding alone."""
    async with sessions() as session:
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session


_CONSTANT = re.compile(r"[A-Za-z0-9 _.:'-]*")


def constant(value: str) -> ColumnElement[str]:
    """A string of our own code (an event type, a ledger reference's prefix, an account code),
    never data, written into a statement's text instead of bound on every run. Refused unless it
    holds only letters, digits, spaces and `_.:'-` (a quote doubled, as standard SQL strings are)."""
    if not _CONSTANT.fullmatch(value):
        raise ValueError(f"not a constant for a statement's text: {value!r}")
    return literal_column("'" + value.replace("'", "''") + "'", String)
