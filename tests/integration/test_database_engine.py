"""The engine every process uses: a pooled connection that PostgreSQL closed (a restart, a backend
terminated) is replaced at checkout, without a round trip per checkout to find out."""

import asyncio

import pytest
from sqlalchemy import Integer, bindparam, event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from payments.schema import driver
from payments.schema.database import create_engine, session_factory
from payments.schema.driver import Statement, fetch_row
from tests.services import eventually


async def test_a_pooled_connection_the_server_closed_is_replaced_and_no_checkout_pings(
    database_url: str, engine: AsyncEngine
) -> None:
    pooled = create_engine(database_url, pool_size=1)
    try:
        async with pooled.connect() as connection:
            first = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            driver = (await connection.get_raw_connection()).driver_connection
        async with engine.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})

        async def closed() -> bool:
            return bool(driver.is_closed())  # type: ignore[union-attr]

        await eventually(closed, bool, "the client noticed that the server closed the connection")
        async with pooled.connect() as connection:
            second = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert second != first
        assert pooled.pool._pre_ping is False  # type: ignore[attr-defined]  # the check costs no statement
    finally:
        await pooled.dispose()


_BACKEND = Statement.of(select(func.pg_backend_pid().label("pid")))
_SLEEP = Statement.of(select(func.pg_backend_pid().label("pid"), func.pg_sleep(bindparam("seconds", type_=Integer))))


async def test_a_connection_lost_under_a_statement_on_the_driver_is_dropped_from_the_pool(
    database_url: str, engine: AsyncEngine
) -> None:
    """A statement run on asyncpg's own connection (payments/schema/driver.py): its connection lost
    mid-statement is asyncpg's error, the pool drops it, and hands out a new connection next."""
    pooled = create_engine(database_url, pool_size=1)
    sessions = session_factory(pooled)
    try:
        first = (await fetch_row(sessions, _BACKEND, {})).pid
        invalidated: list[object] = []
        event.listen(pooled.sync_engine, "invalidate", lambda *args: invalidated.append(args))
        sleeping = asyncio.ensure_future(fetch_row(sessions, _SLEEP, {"seconds": 30}))

        async def asleep() -> bool:
            async with engine.connect() as connection:
                found = await connection.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid AND query LIKE '%pg_sleep%'"),
                    {"pid": first},
                )
                return bool(found.scalar_one())

        await eventually(asleep, bool, "the statement is running on the pooled connection")
        async with engine.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        with pytest.raises(driver.UNREACHABLE):
            await sleeping
        assert invalidated  # dropped at once, not checked in for the next checkout to find closed
        second = (await fetch_row(sessions, _BACKEND, {})).pid
        assert second != first
    finally:
        await pooled.dispose()
