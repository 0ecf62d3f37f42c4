"""Reconciliation by time of change on the real stack: what changed at Stripe since the last
finished run is found however old its payment is, a missed window is never skipped, and each
disagreement a change makes (a capture of a payment we closed, a hold left on one, a refund that
failed later, a second PaymentIntent) is fixed or flagged."""

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, text, update
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from payments.activities.reconciliation import _MARK_SEEN, _SEEN
from payments.config.settings import Settings
from payments.schema.database import session_factory
from payments.schema.driver import fetch_rows
from payments.schema.messages import ReconciliationInput
from payments.schema.tables import Transaction
from payments.workflows.reconciliation import ReconciliationWorkflow
from tests.integration.conftest import Parties, stripe_intent
from tests.integration.reconciliation.test_reconciliation import logs_about, reconcile, sdk, subjects_logged_by
from tests.services import eventually, fresh_key


async def _written_ago(engine: AsyncEngine, tx_id: str, ago: timedelta) -> None:
    """The payment's row as an old one: last written `ago` (and created then, if later)."""
    at = datetime.now(UTC) - ago
    async with engine.begin() as conn:
        old = update(Transaction).where(Transaction.id == tx_id)
        await conn.execute(old.values(updated_at=at, created_at=func.least(Transaction.created_at, at)))


async def _scheduled_run(client: Client, settings: Settings, engine: AsyncEngine, interval: int) -> dict[str, Any]:
    """A run as the Schedule starts it (no window given; the scheduled window `interval` seconds
    long); returns its row."""
    job = ReconciliationInput(interval_seconds=interval)
    workflow_id = f"reconciliation:scheduled-{fresh_key()}"
    async with engine.connect() as conn:
        before = (await conn.execute(text("SELECT now()"))).scalar_one()
    await client.execute_workflow(
        ReconciliationWorkflow.run, job, id=workflow_id, task_queue=settings.temporal_task_queue
    )
    async with engine.connect() as conn:
        started = text(
            "SELECT id, window_start, window_end, status FROM reconciliation_runs WHERE started_at >= :before "
            "ORDER BY started_at DESC LIMIT 1"
        )
        return dict((await conn.execute(started, {"before": before})).mappings().one())


async def _posted(engine: AsyncEngine, reference: str) -> int:
    async with engine.connect() as conn:
        query = text("SELECT count(*) FROM ledger_transactions WHERE reference = :r")
        return int((await conn.execute(query, {"r": reference})).scalar_one())


async def _canceled(parties: Parties, settings: Settings, amount: int) -> tuple[dict[str, Any], Any]:
    """A payment canceled by its customer, and its PaymentIntent."""
    tx = await parties.authorized(amount)
    assert (await parties.api.post(f"/payments/{tx['id']}/cancel", headers=parties.as_user)).status_code == 200
    await parties.wait_for_status(tx["id"], "canceled")
    return tx, stripe_intent(settings, tx["id"])


def _announce(emulator_control: Any, object_id: str, event: str, **changes: Any) -> None:
    """A change Stripe made and announced, its webhook lost on the way."""
    changed = emulator_control("POST", f"/objects/{object_id}", params={"event": event}, json=changes)
    assert changed.status_code == 200


async def test_a_capture_long_after_the_authorization_is_found_outside_its_creation_window(
    parties: Parties, temporal_client: Client, stack_settings: Settings, engine: AsyncEngine, emulator_control
) -> None:
    """Capture at shipping, days later, lost on its way to our books: the run over the last ten
    minutes finds it, though the payment was made two days before."""
    tx = await parties.authorized(1500)
    intent = stripe_intent(stack_settings, tx["id"])
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    emulator_control("POST", f"/objects/{intent.id}", json={"created": int(two_days_ago.timestamp())})
    await _written_ago(engine, tx["id"], timedelta(days=2))
    # Captured out of band, its webhook lost on the way: our books never heard of it.
    _announce(emulator_control, intent.id, "payment_intent.succeeded", status="succeeded", amount_received=1500)

    now = datetime.now(UTC)
    run_id = f"rr_{fresh_key()[:24]}"
    window = ReconciliationInput(run_id, (now - timedelta(minutes=10)).isoformat(), now.isoformat())
    queue = stack_settings.temporal_task_queue
    await temporal_client.execute_workflow(
        ReconciliationWorkflow.run, window, id=f"reconciliation:{run_id}", task_queue=queue
    )

    captured = await parties.get(tx["id"])
    assert captured["status"] == "confirmed" and captured["amount_captured"] == 1500
    assert await logs_about(engine, intent.id) == [("captured_at_stripe", "auto_fixed")]
    assert await _posted(engine, f"capture:{tx['id']}") == 1


async def test_the_next_scheduled_run_starts_where_the_last_finished_one_ended(
    parties: Parties, temporal_client: Client, stack_settings: Settings, engine: AsyncEngine, emulator_control
) -> None:
    """A change made after run 1 finished and before run 2's own scheduled window (as if the runs
    between had been missed) is found by run 2: its window starts at run 1's end."""
    sold = await parties.captured(900)
    await _written_ago(engine, sold["id"], timedelta(hours=1))  # an old, final row
    first = await _scheduled_run(temporal_client, stack_settings, engine, interval=3600)
    assert first["status"] == "finished"
    intent = stripe_intent(stack_settings, sold["id"])
    _announce(emulator_control, intent.id, "payment_intent.canceled", status="canceled")
    changed_at = time.time()
    interval = 1  # run 2's own window: the last second (and the margin) before it starts

    async def clock() -> float:
        return time.time()

    reach = interval + stack_settings.reconciliation_margin.total_seconds() + 2
    await eventually(clock, lambda now: now > changed_at + reach, "the change to fall out of a scheduled window")
    second = await _scheduled_run(temporal_client, stack_settings, engine, interval=interval)

    assert second["id"] != first["id"] and second["window_start"] == first["window_end"]
    assert await subjects_logged_by(engine, second["id"], (intent.id,)) == [intent.id]
    assert await logs_about(engine, intent.id) == [("confirmed_but_canceled_at_stripe", "needs_review")]


async def test_a_capture_at_stripe_of_a_payment_we_canceled_is_recorded(
    parties: Parties, temporal_client: Client, stack_settings: Settings, engine: AsyncEngine, emulator_control
) -> None:
    tx, intent = await _canceled(parties, stack_settings, 1100)
    _announce(emulator_control, intent.id, "payment_intent.succeeded", status="succeeded", amount_received=1100)
    await _written_ago(engine, tx["id"], timedelta(minutes=1))

    await reconcile(temporal_client, stack_settings)

    recorded = await parties.get(tx["id"])
    assert recorded["status"] == "confirmed" and recorded["amount_captured"] == 1100
    assert await logs_about(engine, intent.id) == [("closed_but_captured_at_stripe", "auto_fixed")]
    assert await _posted(engine, f"capture:{tx['id']}") == 1
    await reconcile(temporal_client, stack_settings)  # a second run (or an overlapping one) fixes nothing twice
    assert await _posted(engine, f"capture:{tx['id']}") == 1 and len(await logs_about(engine, intent.id)) == 1


async def test_a_hold_left_on_a_payment_we_canceled_is_voided(
    parties: Parties, temporal_client: Client, stack_settings: Settings, engine: AsyncEngine, emulator_control
) -> None:
    tx, intent = await _canceled(parties, stack_settings, 1200)
    held = {"status": "requires_capture", "amount_capturable": 1200, "canceled_at": None, "cancellation_reason": None}
    _announce(emulator_control, intent.id, "payment_intent.amount_capturable_updated", **held)
    await _written_ago(engine, tx["id"], timedelta(minutes=1))

    await reconcile(temporal_client, stack_settings)

    assert sdk(stack_settings).v1.payment_intents.retrieve(intent.id).status == "canceled"
    assert (await parties.get(tx["id"]))["status"] == "canceled"
    assert await logs_about(engine, intent.id) == [("closed_but_authorized_at_stripe", "auto_fixed")]


async def test_a_refund_that_failed_at_stripe_after_succeeding_is_reversed(
    parties: Parties, temporal_client: Client, stack_settings: Settings, engine: AsyncEngine, emulator_control
) -> None:
    """The card network sends the money back days later and its webhook is lost: reconciliation
    follows Stripe through the refunds' own step, which reverses the posting and restores the payment."""
    sold = await parties.captured(2000)
    refund = (await parties.refund(sold["id"], 400)).json()
    stripe_refund = next(
        r
        for r in sdk(stack_settings).v1.refunds.list(params={"limit": 100}).auto_paging_iter()
        if r.metadata.to_dict().get("refund_id") == refund["id"]
    )
    _announce(
        emulator_control,
        stripe_refund.id,
        "charge.refund.updated",
        status="failed",
        failure_reason="lost_or_stolen_card",
    )

    await reconcile(temporal_client, stack_settings)

    assert await logs_about(engine, stripe_refund.id) == [("refund_failed_at_stripe", "auto_fixed")]
    payment = await parties.get(sold["id"])
    assert (payment["status"], payment["amount_refunded"]) == ("confirmed", 0)


async def test_a_second_payment_intent_for_one_payment_is_voided_or_flagged(
    parties: Parties, temporal_client: Client, stack_settings: Settings, engine: AsyncEngine
) -> None:
    """Two PaymentIntents name one payment: a second hold on the card is released, a second charge
    is flagged; the payment's own PaymentIntent is left alone."""
    tx = await parties.authorized(700)
    own = stripe_intent(stack_settings, tx["id"])
    client = sdk(stack_settings)
    params = {"amount": 700, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    again = params | {"capture_method": "manual", "metadata": {"tx_id": tx["id"], "merchant_id": parties.merchant_id}}
    second_hold = client.v1.payment_intents.create(params=again)
    second_charge = client.v1.payment_intents.capture(client.v1.payment_intents.create(params=again).id)

    await reconcile(temporal_client, stack_settings)

    assert client.v1.payment_intents.retrieve(second_hold.id).status == "canceled"
    assert await logs_about(engine, second_hold.id) == [("second_payment_intent_voided", "auto_fixed")]
    assert await logs_about(engine, second_charge.id) == [("second_payment_intent", "needs_review")]
    assert client.v1.payment_intents.retrieve(own.id).status == "requires_capture"
    assert (await parties.get(tx["id"]))["status"] == "authorized"


async def test_our_side_is_planned_with_statistics_of_this_runs_seen_set(
    parties: Parties, temporal_client: Client, stack_settings: Settings, engine: AsyncEngine
) -> None:
    """Our side anti-joins the rows this run saw at Stripe. Planned with the statistics of an
    earlier run's seen set, PostgreSQL took this run's for one row and rescanned it for each of our
    rows: at 100,000 payments the query outlived its activity's timeout on every retry. The
    analysis made as our side starts must be committed, not rolled back with its session."""
    await parties.captured(700)  # at least one change in the window
    run_id, counts = await reconcile(temporal_client, stack_settings)

    assert counts["events"] >= 1
    async with engine.connect() as conn:
        query = text(
            "SELECT most_common_vals::text::text[] FROM pg_stats "
            "WHERE tablename = 'reconciliation_seen' AND attname = 'run_id'"
        )
        assert run_id in ((await conn.execute(query)).scalar_one_or_none() or [])


async def test_a_change_is_judged_by_its_latest_event_whichever_slice_is_read_first(
    parties: Parties, temporal_client: Client, stack_settings: Settings, engine: AsyncEngine, emulator_control
) -> None:
    """The window's events are read as slices at once. A payment authorized 40 minutes ago (that
    event in an early slice, agreeing with our books) and captured at Stripe just now, its webhook
    lost (that event in the last slice): the capture is recorded, whichever slice is read first."""
    assert stack_settings.reconciliation_slices > 1
    tx = await parties.authorized(1300)
    intent = stripe_intent(stack_settings, tx["id"])
    params = {"type": "payment_intent.amount_capturable_updated", "limit": 100}
    listed = sdk(stack_settings).v1.events.list(params=params)
    (authorized,) = [e for e in listed.data if e.data.object["id"] == intent.id]
    forty_minutes_ago = datetime.now(UTC) - timedelta(minutes=40)
    emulator_control("POST", f"/objects/{authorized.id}", json={"created": int(forty_minutes_ago.timestamp())})
    await _written_ago(engine, tx["id"], timedelta(minutes=40))
    _announce(emulator_control, intent.id, "payment_intent.succeeded", status="succeeded", amount_received=1300)

    await reconcile(temporal_client, stack_settings)

    assert (await parties.get(tx["id"]))["status"] == "confirmed"
    assert await logs_about(engine, intent.id) == [("captured_at_stripe", "auto_fixed")]


async def test_a_slice_skips_only_what_it_or_a_later_slice_has_checked(engine: AsyncEngine) -> None:
    """A later slice of the window saw a later state; an earlier one did not."""
    run_id = f"rr_{fresh_key()[:24]}"
    sessions = session_factory(engine)
    await fetch_rows(sessions, _MARK_SEEN, {"run_id": run_id, "ids": ["pi_b", "pi_a"], "slice": 2})
    await fetch_rows(sessions, _MARK_SEEN, {"run_id": run_id, "ids": ["pi_a", "pi_c"], "slice": 1})  # keeps pi_a at 2

    async def skipped_by(part: int) -> set[str]:
        params = {"run_id": run_id, "ids": ["pi_a", "pi_b", "pi_c", "pi_d"], "slice": part}
        return {row.stripe_id for row in await fetch_rows(sessions, _SEEN, params)}

    assert await skipped_by(0) == {"pi_a", "pi_b", "pi_c"}
    assert await skipped_by(2) == {"pi_a", "pi_b"}
    assert await skipped_by(3) == set()
