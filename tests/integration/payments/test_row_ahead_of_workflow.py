"""A payment's row can say `authorized` before its workflow does: the row is written inside a
workflow task, and when a worker dies before completing it the server runs the task again. A
chaos run's client read `authorized`, confirmed, and was answered 409 "The payment is
authorized.". Until the workflow catches up, a confirm or a cancel is answered 503 with
Retry-After, nothing is done at Stripe, and the same request sent again afterwards succeeds."""

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from api.routes.payments import CATCHING_UP
from config.settings import Settings
from schema.tables import Transaction
from tests.integration.payments.conftest import AUTHORIZE, Parties, stripe_intent
from tests.services import eventually


async def _row(engine: AsyncEngine, key: str) -> tuple[str, str] | None:
    async with engine.connect() as connection:
        found = await connection.execute(
            select(Transaction.id, Transaction.status).where(Transaction.idempotency_key == key)
        )
        row = found.one_or_none()
    return (row.id, row.status) if row else None


@pytest.mark.parametrize(("action", "done"), [("confirm", "confirmed"), ("cancel", "canceled")])
async def test_a_request_the_workflow_is_not_ready_for_is_refused_for_now_then_done(
    parties: Parties, emulator_control, engine: AsyncEngine, stack_settings: Settings, action: str, done: str
) -> None:
    key = uuid.uuid4().hex
    # Stripe answers the authorization after 6 s: the workflow says `pending` until then.
    slow = {"action": "latency", "path": AUTHORIZE, "latency_ms": 6000, "times": 1}
    assert emulator_control("POST", "/faults", json=slow).status_code == 201
    init = asyncio.ensure_future(parties.init(900, key=key))
    recorded = await eventually(lambda: _row(engine, key), lambda row: row is not None, "the payment's row")
    assert recorded is not None and recorded[1] == "pending"
    tx_id = recorded[0]
    async with engine.begin() as connection:  # the row a worker wrote before it died mid-task
        await connection.execute(update(Transaction).where(Transaction.id == tx_id).values(status="authorized"))

    async def send() -> httpx.Response:
        if action == "confirm":
            return await parties.confirm(tx_id)
        return await parties.api.post(f"/payments/{tx_id}/cancel", headers=parties.as_user)

    early = await send()
    assert not init.done()  # still waiting on Stripe: the workflow had not caught up
    assert early.status_code == 503, early.text
    assert early.json()["error"]["code"] == "service_unavailable" and early.json()["error"]["message"] == CATCHING_UP
    assert early.headers["Retry-After"] == "1"

    authorized = await init
    assert authorized.status_code == 201 and authorized.json()["status"] == "authorized", authorized.text
    again = await send()
    assert again.status_code == 200 and again.json()["status"] == done, again.text
    intent = stripe_intent(stack_settings, tx_id)
    assert intent.status == ("succeeded" if action == "confirm" else "canceled")
    assert intent.amount_received == (900 if action == "confirm" else 0)
