"""The API's database pool: a request never holds a connection while it waits on Temporal, and a
pool with no connection free answers 503 quickly, while readiness still sees PostgreSQL up."""

import asyncio

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from payments.api.app import create_app
from payments.api.services import API_APPLICATION_NAME
from payments.config.settings import Settings
from payments.workers.registry import build_worker_parts, sandboxed_workflow_runner, workflows
from payments.workflows.payment import workflow_id
from tests.integration.conftest import Parties
from tests.services import eventually, fresh_key, serve_in_thread


async def _api_connections(engine: AsyncEngine) -> list[tuple[str, str | None]]:
    """(state, wait_event_type) of every connection the API has open."""
    async with engine.connect() as connection:
        query = text("SELECT state, wait_event_type FROM pg_stat_activity WHERE application_name = :name")
        return [
            (row.state, row.wait_event_type) for row in await connection.execute(query, {"name": API_APPLICATION_NAME})
        ]


async def _started(temporal: Client, user_id: str, keys: list[str]) -> int:
    """How many of the keys' payment workflows Temporal holds."""
    started = 0
    for key in keys:
        try:
            await temporal.get_workflow_handle(workflow_id(user_id, key)).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
        else:
            started += 1
    return started


async def test_inits_waiting_on_temporal_hold_no_database_connection(
    parties: Parties, engine: AsyncEngine, temporal_client: Client, stack_settings: Settings
) -> None:
    """Fault: no worker polls the API's task queue. More inits than the pool has connections
    wait on Temporal; meanwhile reads answer and no API connection sits idle in transaction."""
    paid = await parties.authorized()
    settings = stack_settings.model_copy(update={"db_pool_size": 1, "temporal_task_queue": f"no-worker-{fresh_key()}"})
    with serve_in_thread(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            keys = [fresh_key() for _ in range(4)]  # the pool holds 2: pool_size 1 + overflow 1
            inits = [
                asyncio.create_task(
                    client.post("/payments/init", json=parties.init_body(key=key), headers=parties.as_user)
                )
                for key in keys
            ]
            await eventually(
                lambda: _started(temporal_client, parties.user_id, keys),
                lambda started: started == len(keys),
                "every init to wait on Temporal",
            )
            read = await client.get(f"/payments/{paid['id']}", headers=parties.as_user)
            assert read.status_code == 200, read.text
            history = await client.get(f"/transactions/{parties.user_id}", headers=parties.as_user)
            assert history.status_code == 200, history.text
            states = [state for state, _ in await _api_connections(engine)]
            assert "idle" in states and "idle in transaction" not in states, states

            # The worker comes back: every waiting init gets its payment.
            parts = build_worker_parts(settings, temporal_client)
            async with Worker(
                temporal_client,
                task_queue=settings.temporal_task_queue,
                workflows=workflows(),
                workflow_runner=sandboxed_workflow_runner(),
                activities=parts.activities,
            ):
                answers = await asyncio.gather(*inits)
            await parts.close()
    assert [answer.status_code for answer in answers] == [201] * len(keys)


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
