"""The engine every process uses: a pooled connection that PostgreSQL closed (a restart, a backend
terminated) is replaced at checkout, without a round trip per checkout to find out."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from payments.schema.database import create_engine
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
