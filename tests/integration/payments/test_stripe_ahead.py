"""A payment that moves at Stripe outside our own calls (a dashboard capture, a capture whose answer
was lost, a void) reaches our books through Stripe's webhook alone: no client retries, no
reconciliation runs. And the first confirm fixes what is captured."""

import asyncio
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from payments.config.settings import Settings
from payments.schema.tables import LedgerTransaction, OutboxEvent
from payments.workflows import payment_catch_up
from payments.workflows.payment import workflow_id
from tests.integration.conftest import Parties, stripe_intent
from tests.services import eventually

HEALED_WITHIN = 120.0  # the bound: Stripe's state reaches our row within 2 minutes


def _stripe(settings: Settings) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_emulator", base_addresses={"api": settings.stripe_api_base})


async def _books(engine: AsyncEngine, tx_id: str) -> tuple[int, list[str]]:
    """The payment's capture postings and its outbox events, by type."""
    async with engine.connect() as connection:
        postings = await connection.scalar(
            select(func.count()).select_from(LedgerTransaction).where(LedgerTransaction.reference == f"capture:{tx_id}")
        )
        events = (await connection.scalars(select(OutboxEvent.type).where(OutboxEvent.aggregate_id == tx_id))).all()
    return int(postings or 0), sorted(events)


async def _end_its_workflow(temporal_client: Client, tx: dict[str, Any], parties: Parties) -> None:
    """As if its workflow had ended, or Temporal had lost it."""
    handle = temporal_client.get_workflow_handle(workflow_id(parties.user_id, tx["idempotency_key"]))
    await handle.terminate("the test ends it")


async def test_a_capture_made_at_stripe_while_the_payment_waits_reaches_our_books(
    parties: Parties, stack_settings: Settings, engine: AsyncEngine
) -> None:
    tx = await parties.authorized(1800)
    _stripe(stack_settings).v1.payment_intents.capture(stripe_intent(stack_settings, tx["id"]).id)
    captured = await parties.wait_for_status(tx["id"], "confirmed", within=HEALED_WITHIN)
    assert captured["amount_captured"] == 1800
    assert await _books(engine, tx["id"]) == (1, ["payment.authorized", "payment.confirmed"])


def _key(tx: dict[str, Any], step: str | None) -> dict[str, str]:
    """Stripe request options: our workflow's own idempotency key for `step`, or none (a move made
    outside our calls, a dashboard's)."""
    return {"idempotency_key": f"{tx['id']}:{step}"} if step else {}


# The workflow is gone either way: a move made at Stripe outside our calls, or our own move whose
# workflow ended before it recorded the answer (its webhook is not ignored then).
@pytest.mark.parametrize("own", [False, True], ids=["outside", "our-own-key"])
async def test_a_capture_made_at_stripe_after_the_workflow_ended_is_caught_up(
    own: bool, parties: Parties, stack_settings: Settings, engine: AsyncEngine, temporal_client: Client
) -> None:
    tx = await parties.authorized(2100)
    await _end_its_workflow(temporal_client, tx, parties)
    _stripe(stack_settings).v1.payment_intents.capture(
        stripe_intent(stack_settings, tx["id"]).id,
        params={"amount_to_capture": 2000},
        options=_key(tx, "capture" if own else None),
    )
    captured = await parties.wait_for_status(tx["id"], "confirmed", within=HEALED_WITHIN)
    assert captured["amount_captured"] == 2000
    assert await _books(engine, tx["id"]) == (1, ["payment.authorized", "payment.confirmed"])
    catch_up = temporal_client.get_workflow_handle(payment_catch_up.workflow_id(tx["id"]))
    await catch_up.result()  # its last write can land before the workflow closes
    assert (await catch_up.describe()).status == WorkflowExecutionStatus.COMPLETED


@pytest.mark.parametrize("own", [False, True], ids=["outside", "our-own-key"])
async def test_a_void_at_stripe_after_the_workflow_ended_is_recorded_canceled(
    own: bool, parties: Parties, stack_settings: Settings, engine: AsyncEngine, temporal_client: Client
) -> None:
    tx = await parties.authorized(900)
    await _end_its_workflow(temporal_client, tx, parties)
    _stripe(stack_settings).v1.payment_intents.cancel(
        stripe_intent(stack_settings, tx["id"]).id, options=_key(tx, "cancel" if own else None)
    )
    canceled = await parties.wait_for_status(tx["id"], "canceled", within=HEALED_WITHIN)
    assert canceled["failure_code"] == "canceled_at_stripe"
    assert await _books(engine, tx["id"]) == (0, ["payment.authorized", "payment.canceled"])


async def test_the_first_confirm_fixes_the_capture_amount(parties: Parties, stack_settings: Settings) -> None:
    tx = await parties.authorized(1000)
    first = await parties.confirm(tx["id"], 600)
    assert first.status_code == 200 and first.json()["amount_captured"] == 600
    for other in (700, None):
        refused = await parties.confirm(tx["id"], other)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "capture_amount_fixed"
    again = await parties.confirm(tx["id"], 600)
    assert again.status_code == 200 and again.json()["amount_captured"] == 600
    assert stripe_intent(stack_settings, tx["id"]).amount_received == 600


async def test_the_webhook_of_our_own_capture_costs_the_payment_no_signal(
    parties: Parties, stack_settings: Settings, temporal_client: Client
) -> None:
    """Our workflow sent that capture with the confirm in its history and records it itself: its
    `payment_intent.succeeded` is acknowledged without a signal (a workflow task per payment)."""
    tx = await parties.captured(1300)
    intent = stripe_intent(stack_settings, tx["id"])
    client = _stripe(stack_settings)
    events = client.v1.events.list(params={"type": "payment_intent.succeeded", "limit": 100}).data
    ours = [e for e in events if e.data.object["id"] == intent.id]
    assert len(ours) == 1 and ours[0].request is not None and ours[0].request.idempotency_key == f"{tx['id']}:capture"
    await eventually(  # Stripe's delivery of it has been answered
        lambda: asyncio.to_thread(_delivered, stack_settings, ours[0].id), bool, "the webhook's delivery"
    )
    history = await temporal_client.get_workflow_handle(
        workflow_id(parties.user_id, tx["idempotency_key"])
    ).fetch_history()
    assert not [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]


def _delivered(settings: Settings, event_id: str) -> bool:
    deliveries = httpx.get(f"{settings.stripe_api_base}/_emulator/webhook_deliveries", timeout=10).json()["data"]
    return any(d["event_id"] == event_id and d["delivered"] for d in deliveries)
