import asyncio

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from schema.database import asyncpg_url
from schema.migrate import downgrade, upgrade
from schema.tables import Base
from tests.services import scratch_database


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(asyncpg_url(url))
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


def test_migrations_upgrade_downgrade_and_upgrade_again(database_url: str) -> None:
    with scratch_database(database_url) as url:
        upgrade(url)
        assert set(Base.metadata.tables) <= asyncio.run(_tables(url))
        downgrade(url, "base")
        assert asyncio.run(_tables(url)) == {"alembic_version"}
        upgrade(url)
        assert set(Base.metadata.tables) <= asyncio.run(_tables(url))
