"""Past its bound on inits in flight, the API refuses a new payment at once with 503 and
Retry-After, and nothing of it is written or started: the same key sent again later pays."""

import asyncio

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from payments.api.admission import AT_CAPACITY
from payments.api.app import create_app
from payments.api.metrics import REGISTRY
from payments.config.settings import Settings
from payments.schema.tables import Transaction
from payments.workflows.payment import workflow_id
from tests.integration.conftest import AUTHORIZE, Parties
from tests.services import eventually, fresh_key, serve_in_thread


def shed_so_far() -> float:
    return REGISTRY.get_sample_value("payments_inits_shed_total") or 0.0


async def test_inits_past_the_bound_are_refused_at_once_and_leave_nothing(
    parties: Parties,
    stack_settings: Settings,
    emulator_control,
    engine: AsyncEngine,
    temporal_client: Client,
) -> None:
    settings = stack_settings.model_copy(update={"max_inits_in_flight": 2})
    slow = {"action": "latency", "path": AUTHORIZE, "latency_ms": 6000}
    fault = emulator_control("POST", "/faults", json=slow).json()
    shed_before = shed_so_far()
    admitted_keys, shed_keys = [fresh_key(), fresh_key()], [fresh_key(), fresh_key()]

    async def rows(keys: list[str]) -> int:
        async with engine.connect() as connection:
            count = await connection.scalar(
                select(func.count()).select_from(Transaction).where(Transaction.idempotency_key.in_(keys))
            )
        return int(count or 0)

    with serve_in_thread(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as api:

            async def init(key: str) -> httpx.Response:
                return await api.post("/payments/init", json=parties.init_body(700, key=key), headers=parties.as_user)

            try:
                admitted = [asyncio.ensure_future(init(key)) for key in admitted_keys]
                # Both admitted: each payment's workflow wrote its row, then waits on the slow Stripe.
                await eventually(lambda: rows(admitted_keys), lambda n: n == 2, "both admitted payments recorded")
                refused = [await init(key) for key in shed_keys]
                repeat = asyncio.ensure_future(init(admitted_keys[0]))  # a client that timed out: joins
                assert not any(task.done() for task in admitted)  # refused while the others waited
            finally:
                emulator_control("DELETE", f"/faults/{fault['id']}")
            answers = await asyncio.gather(*admitted)
            repeated = await repeat
            again = await init(shed_keys[0])

    for response in refused:
        assert response.status_code == 503, response.text
        assert response.json()["error"] | {"request_id": None} == {
            "code": "service_unavailable",
            "message": AT_CAPACITY,
            "request_id": None,
        }
        assert response.headers["Retry-After"] == "1"
    assert shed_so_far() - shed_before == 2
    assert [r.json()["status"] for r in answers] == ["authorized", "authorized"], [r.text for r in answers]
    assert repeated.status_code == 200 and repeated.json()["id"] == answers[0].json()["id"], repeated.text
    assert again.status_code == 201 and again.json()["status"] == "authorized", again.text

    # Nothing of a refused payment was written or started.
    assert await rows(shed_keys[1:]) == 0
    with pytest.raises(RPCError) as no_workflow:
        await temporal_client.get_workflow_handle(workflow_id(parties.user_id, shed_keys[1])).describe()
    assert no_workflow.value.status == RPCStatusCode.NOT_FOUND


async def test_identical_inits_in_flight_share_one_admission_and_one_update(
    parties: Parties, stack_settings: Settings, emulator_control
) -> None:
    """A client's retries of one payment arriving together (it timed out, or retries in a storm)
    are not new work: they join the first one's call to Temporal instead of each taking a slot
    (and an update, which Temporal bounds per workflow)."""
    settings = stack_settings.model_copy(update={"max_inits_in_flight": 1})
    slow = {"action": "latency", "path": AUTHORIZE, "latency_ms": 1500}
    fault = emulator_control("POST", "/faults", json=slow).json()
    shed_before = shed_so_far()
    body = parties.init_body(700)
    with serve_in_thread(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as api:
            try:
                answers = await asyncio.gather(
                    *[api.post("/payments/init", json=body, headers=parties.as_user) for _ in range(5)]
                )
            finally:
                emulator_control("DELETE", f"/faults/{fault['id']}")
    assert sorted(r.status_code for r in answers) == [200, 200, 200, 200, 201], [r.text for r in answers]
    assert {r.json()["id"] for r in answers} == {answers[0].json()["id"]}
    assert {r.json()["status"] for r in answers} == {"authorized"}
    assert shed_so_far() == shed_before
