"""The engine every process uses: a pooled connection that PostgreSQL closed (a restart, a backend
terminated) is replaced at checkout, without a round trip per checkout to find out."""

import asyncio
from typing import Any

import pytest
from sqlalchemy import Integer, bindparam, event, func, select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from payments.schema.database import create_engine, session_factory
from payments.schema.driver import Statement, fetch_row, fetch_rows
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


async def _asleep_on_the_driver(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> tuple[int, asyncio.Future[Any], list[object]]:
    """A statement sleeping on the pool's one connection: its backend's pid, the statement's task,
    and the invalidations the pool sees from now on."""
    first = (await fetch_row(sessions, _BACKEND, {})).pid
    invalidated: list[object] = []
    event.listen(sessions.kw["bind"].sync_engine, "invalidate", lambda *args: invalidated.append(args))
    sleeping = asyncio.ensure_future(fetch_row(sessions, _SLEEP, {"seconds": 30}))

    async def asleep() -> bool:
        async with engine.connect() as connection:
            found = await connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid AND query LIKE '%pg_sleep%'"),
                {"pid": first},
            )
            return bool(found.scalar_one())

    await eventually(asleep, bool, "the statement is running on the pooled connection")
    return first, sleeping, invalidated


async def test_a_connection_lost_under_a_statement_on_the_driver_is_dropped_from_the_pool(
    database_url: str, engine: AsyncEngine
) -> None:
    """A statement run on asyncpg's own connection (payments/schema/driver.py): its connection lost
    mid-statement is raised as SQLAlchemy raises it, the pool drops it, and hands out a new one next."""
    pooled = create_engine(database_url, pool_size=1)
    sessions = session_factory(pooled)
    try:
        first, sleeping, invalidated = await _asleep_on_the_driver(sessions, engine)
        async with engine.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        with pytest.raises(OperationalError) as lost:
            await sleeping
        assert lost.value.connection_invalidated  # the API answers 503, the worker retries
        assert invalidated  # dropped at once, not checked in for the next checkout to find closed
        assert (await fetch_row(sessions, _BACKEND, {})).pid != first
    finally:
        await pooled.dispose()


async def test_a_statement_cancelled_on_the_driver_does_not_hand_its_busy_connection_on(
    database_url: str, engine: AsyncEngine
) -> None:
    """An activity's timeout cancels its statement mid-way: its connection is dropped, and the next
    statement does not wait on the one still running."""
    pooled = create_engine(database_url, pool_size=1)
    sessions = session_factory(pooled)
    try:
        first, sleeping, invalidated = await _asleep_on_the_driver(sessions, engine)
        sleeping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sleeping
        assert invalidated
        assert (await asyncio.wait_for(fetch_row(sessions, _BACKEND, {}), 10)).pid != first
    finally:
        await pooled.dispose()


async def test_fetch_rows_gives_every_row_or_none_and_refusals_as_sqlalchemy_raises_them(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    numbers = Statement.of(text("SELECT n FROM generate_series(1, :last) AS n"))
    assert [row.n for row in await fetch_rows(sessions, numbers, {"last": 3})] == [1, 2, 3]
    assert await fetch_rows(sessions, numbers, {"last": 0}) == []
    with pytest.raises(DBAPIError):  # refused: in SQLAlchemy's vocabulary, as through a Session
        await fetch_rows(sessions, Statement.of(text("SELECT 1 / :zero AS x")), {"zero": 0})
