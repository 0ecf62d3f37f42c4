"""A payment's row can say `authorized` before its workflow does: the row is written inside a
workflow task, and when a worker dies before completing it the server runs the task again. A
chaos run's client read `authorized`, confirmed, and was answered 409 "The payment is
authorized.". Until the workflow catches up, a confirm or a cancel is answered 503 with
Retry-After, and the same request sent again afterwards succeeds (once, at Stripe). The same
holds after 3-D Secure."""

import asyncio

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from payments.api.routes.payments import CATCHING_UP
from payments.config.settings import Settings
from payments.schema.tables import Transaction
from payments.workflows.payment import workflow_id
from tests.integration.conftest import AUTHORIZE, Parties, stripe_intent
from tests.services import eventually, fresh_key


async def _row(engine: AsyncEngine, key: str) -> tuple[str, str] | None:
    async with engine.connect() as connection:
        found = await connection.execute(
            select(Transaction.id, Transaction.status).where(Transaction.idempotency_key == key)
        )
        row = found.one_or_none()
    return (row.id, row.status) if row else None


async def _write_authorized_ahead(engine: AsyncEngine, tx_id: str) -> None:
    """The row a worker wrote inside a workflow task, before it died without completing the task."""
    async with engine.begin() as connection:
        await connection.execute(update(Transaction).where(Transaction.id == tx_id).values(status="authorized"))


@pytest.mark.parametrize(("action", "done"), [("confirm", "confirmed"), ("cancel", "canceled")])
async def test_a_request_the_workflow_is_not_ready_for_is_refused_for_now_then_done(
    parties: Parties, emulator_control, engine: AsyncEngine, stack_settings: Settings, action: str, done: str
) -> None:
    key = fresh_key()
    # Stripe answers the authorization after 10 s: the workflow says `pending` until then.
    slow = {"action": "latency", "path": AUTHORIZE, "latency_ms": 10_000, "times": 1}
    assert emulator_control("POST", "/faults", json=slow).status_code == 201
    init = asyncio.ensure_future(parties.init(900, key=key))
    recorded = await eventually(lambda: _row(engine, key), lambda row: row is not None, "the payment's row")
    assert recorded is not None and recorded[1] == "pending"
    tx_id = recorded[0]
    await _write_authorized_ahead(engine, tx_id)

    async def send() -> httpx.Response:
        if action == "confirm":
            return await parties.confirm(tx_id)
        return await parties.api.post(f"/payments/{tx_id}/cancel", headers=parties.as_user)

    try:
        early = await send()
        assert not init.done()  # still waiting on Stripe: the workflow had not caught up
    finally:
        authorized = await init
    assert early.status_code == 503, early.text
    assert early.json()["error"]["code"] == "service_unavailable" and early.json()["error"]["message"] == CATCHING_UP
    assert early.headers["Retry-After"] == "1"

    assert authorized.status_code == 201 and authorized.json()["status"] == "authorized", authorized.text
    again = await send()
    assert again.status_code == 200 and again.json()["status"] == done, again.text
    intent = stripe_intent(stack_settings, tx_id)
    assert intent.status == ("succeeded" if action == "confirm" else "canceled")
    assert intent.amount_received == (900 if action == "confirm" else 0)


async def test_a_confirm_after_3d_secure_the_workflow_has_not_recorded_is_refused_for_now_then_done(
    parties: Parties, emulator_control, engine: AsyncEngine, stack_settings: Settings, temporal_client: Client
) -> None:
    tx = await parties.authorized(card="pm_card_authenticationRequired")
    assert tx["status"] == "requires_action"
    intent = stripe_intent(stack_settings, tx["id"])
    # The workflow reads the PaymentIntent back after Stripe's webhook: slow, it stays `requires_action`.
    slow = {"action": "latency", "path": f"/v1/payment_intents/{intent.id}", "method": "GET"}
    assert emulator_control("POST", "/faults", json=slow | {"latency_ms": 10_000, "times": 3}).status_code == 201
    completed = emulator_control("POST", f"/payment_intents/{intent.id}/complete_action", json={"outcome": "succeed"})
    assert completed.is_success
    handle = temporal_client.get_workflow_handle(workflow_id(parties.user_id, tx["idempotency_key"]))
    await eventually(lambda: _signaled(handle), bool, "Stripe's webhook reached the workflow")
    await _write_authorized_ahead(engine, tx["id"])  # after the read-back

    early = await parties.confirm(tx["id"])
    assert early.status_code == 503, early.text
    assert early.json()["error"]["message"] == CATCHING_UP and early.headers["Retry-After"] == "1"
    # The client sends the confirm again, as Retry-After says, until the workflow has caught up.
    again = await eventually(lambda: parties.confirm(tx["id"]), lambda r: r.status_code != 503, "the confirm")
    assert again.status_code == 200 and again.json()["status"] == "confirmed", again.text
    assert stripe_intent(stack_settings, tx["id"]).amount_received == tx["amount"]


async def _signaled(handle: WorkflowHandle) -> bool:
    history = await handle.fetch_history()
    return any(event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED for event in history.events)
