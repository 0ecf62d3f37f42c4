"""The async engine and session factory, from a plain PostgreSQL URL."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
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
    pre_ping: bool = True,
) -> AsyncEngine:
    """`application_name` names the connections in pg_stat_activity. `pre_ping` tests a pooled
    connection before each use (asyncpg: BEGIN, `;`, ROLLBACK: three round trips per checkout), so a
    request never meets a connection a PostgreSQL restart broke; a caller that retries anyway (a
    Temporal activity) can skip it: the first statement on a broken connection fails, SQLAlchemy
    drops the whole pool, and the retry gets a fresh connection."""
    server_settings = {"application_name": application_name} if application_name else {}
    return create_async_engine(
        asyncpg_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout,
        pool_pre_ping=pre_ping,
        connect_args={"server_settings": server_settings},
    )


def create_probe_engine(database_url: str) -> AsyncEngine:
    """A connection of its own per use: a health check asks whether PostgreSQL answers, and never
    queues behind busy requests for a pooled connection."""
    return create_async_engine(asyncpg_url(database_url), poolclass=NullPool)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
