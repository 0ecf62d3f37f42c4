"""Alembic environment: runs migrations over asyncpg, one at a time (advisory lock)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from payments.schema.database import asyncpg_url
from payments.schema.tables import Base

MIGRATION_LOCK = 7_301_274  # any constant shared by every process that migrates


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
    with context.begin_transaction():
        # Two processes migrating at once take turns; the lock ends with the transaction.
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        context.run_migrations()


async def _migrate() -> None:
    engine = create_async_engine(asyncpg_url(context.config.attributes["database_url"]), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


asyncio.run(_migrate())
