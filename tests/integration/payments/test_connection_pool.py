"""The API's database pool: a request never holds a connection while it waits on Temporal, and a
pool with no connection free answers 503 quickly, while readiness still sees PostgreSQL up."""

import asyncio

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from api.services import API_APPLICATION_NAME
from config.settings import Settings
from tests.integration.payments.conftest import Parties
from tests.services import eventually, serve_in_thread


async def _api_connections(engine: AsyncEngine) -> list[tuple[str, str | None]]:
    """(state, wait_event_type) of every connection the API has open."""
    async with engine.connect() as connection:
        query = text("SELECT state, wait_event_type FROM pg_stat_activity WHERE application_name = :name")
        return [
            (row.state, row.wait_event_type) for row in await connection.execute(query, {"name": API_APPLICATION_NAME})
        ]


async def test_an_exhausted_pool_answers_503_with_retry_after_and_readiness_stays_up(
    parties: Parties, engine: AsyncEngine, stack_settings: Settings
) -> None:
    """Fault: a lock holds both pooled connections in their queries. The next request gets no
    connection: 503 in the envelope, not a 500 after 30 s; PostgreSQL itself is up."""
    paid = await parties.authorized()
    settings = stack_settings.model_copy(update={"db_pool_size": 1})
    with serve_in_thread(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client, engine.connect() as lock:
            await lock.execute(text("LOCK TABLE transactions IN ACCESS EXCLUSIVE MODE"))
            reads = [
                asyncio.create_task(client.get(f"/payments/{paid['id']}", headers=parties.as_user)) for _ in range(2)
            ]
            await eventually(
                lambda: _api_connections(engine),
                lambda connections: [wait for _, wait in connections].count("Lock") == 2,
                "both pooled connections to wait on the lock",
            )
            busy = await client.get(f"/payments/{paid['id']}", headers=parties.as_user)
            assert busy.status_code == 503, busy.text
            assert busy.json()["error"]["code"] == "service_unavailable"
            assert int(busy.headers["retry-after"]) >= 1
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            await lock.rollback()
            assert [(await read).status_code for read in reads] == [200, 200]
