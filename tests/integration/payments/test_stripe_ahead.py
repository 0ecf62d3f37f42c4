"""A payment that moves at Stripe outside our own calls (a dashboard capture, a capture whose answer
was lost, a void) reaches our books through Stripe's webhook alone: no client retries, no
reconciliation runs. And the first confirm fixes what is captured."""

import asyncio
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from payments.api.routes import stripe_webhooks
from payments.config.settings import Settings
from payments.schema.database import session_factory
from payments.schema.messages import StripePaymentEvent
from payments.schema.tables import LedgerTransaction, OutboxEvent
from payments.workflows import payment_catch_up
from payments.workflows.payment import workflow_id
from tests.exported_metrics import value
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


async def _own_moves(parties: Parties) -> dict[str, float]:
    """The API's count of our own captures' and voids' webhooks, by what it found."""
    page = (await parties.api.get("/metrics", headers=parties.auth("operator"))).text
    return {
        found: value(page, "payments_stripe_own_moves_total", found=found)
        for found in ("recorded", "workflow_running", "caught_up")
    }


async def test_the_webhook_of_our_own_capture_finds_it_recorded_without_asking_temporal(parties: Parties) -> None:
    """Stripe sends it at once, before the worker has the capture's answer: the API gives the row
    its pauses to show the capture, and does not describe the running workflow (a describe per
    payment cost about 6 ms of CPU)."""
    before = await _own_moves(parties)
    await parties.captured(1400)
    after = await eventually(
        lambda: _own_moves(parties),
        lambda counts: sum(counts.values()) > sum(before.values()),
        "the capture's webhook to be answered",
    )
    assert after.get("recorded", 0) == before.get("recorded", 0) + 1, (before, after)


def _delivered(settings: Settings, event_id: str) -> bool:
    deliveries = httpx.get(f"{settings.stripe_api_base}/_emulator/webhook_deliveries", timeout=10).json()["data"]
    return any(d["event_id"] == event_id and d["delivered"] for d in deliveries)


class _WorkflowEndsWhileAsked:
    """A Temporal client whose payment workflow records the capture and ends just as it is
    described: the race between the API's last read of the row and its describe. The capture is
    the real one (the confirm, through the workflow: the row, its ledger posting and its event),
    so the books stay whole for the tests that check them beside this one."""

    def __init__(self, parties: Parties, tx_id: str) -> None:
        self.parties, self.tx_id = parties, tx_id
        self.started: list[str] = []

    def get_workflow_handle(self, workflow_id: str) -> "_WorkflowEndsWhileAsked":
        return self

    async def describe(self) -> SimpleNamespace:
        assert (await self.parties.confirm(self.tx_id)).status_code == 200
        return SimpleNamespace(status=WorkflowExecutionStatus.COMPLETED)

    async def start_workflow(self, *args: Any, **kwargs: Any) -> None:
        self.started.append(kwargs["id"])


async def test_a_workflow_that_records_the_capture_and_ends_as_it_is_described_gets_no_catch_up(
    parties: Parties, engine: AsyncEngine, stack_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stripe_webhooks, "OWN_MOVE_PAUSES", (0.0,))
    tx = await parties.authorized(1500)
    temporal = _WorkflowEndsWhileAsked(parties, tx["id"])
    services = SimpleNamespace(sessions=session_factory(engine), settings=stack_settings)
    event = StripePaymentEvent("evt_race", "payment_intent.succeeded", "pi_race", "succeeded", None, None)
    await stripe_webhooks._check_own_move(temporal, services, event, tx["id"])  # type: ignore[arg-type]
    assert temporal.started == []  # the row showed the capture once the workflow had ended
