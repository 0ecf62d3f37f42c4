"""Reconciliation on the real stack. Each test makes one kind of disagreement between our books
and Stripe, the way it happens in life (a change at Stripe out of band, or rows a crash left
behind), runs a reconciliation, and checks it was fixed or flagged; a second run finds nothing."""

import asyncio
import dataclasses
import re
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from payments.activities.payout_records import PayoutRecords
from payments.config.settings import Settings
from payments.schema.database import session_factory
from payments.schema.messages import (
    PayoutRequest,
    ReconciliationInput,
    ReconciliationPage,
    ReconciliationPageResult,
    ReserveRequest,
)
from payments.schema.tables import Payout
from payments.workers.registry import build_worker_parts, sandboxed_workflow_runner
from payments.workflows.reconciliation import PHASES, ReconciliationWorkflow
from tests.integration.conftest import Parties, command_env, stripe_intent
from tests.services import eventually, fresh_key


def sdk(settings: Settings) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_emulator", base_addresses={"api": settings.stripe_api_base})


async def reconcile(client: Client, settings: Settings) -> tuple[str, dict[str, int]]:
    """A run over the last hour (everything these tests made), as the Schedule would start it."""
    run_id = f"rr_{fresh_key()[:24]}"
    now = datetime.now(UTC)
    job = ReconciliationInput(run_id, (now - timedelta(hours=1)).isoformat(), (now + timedelta(minutes=1)).isoformat())
    counts = await client.execute_workflow(
        ReconciliationWorkflow.run, job, id=f"reconciliation:{run_id}", task_queue=settings.temporal_task_queue
    )
    return run_id, counts


async def row_age(engine: AsyncEngine, tx_id: str) -> timedelta:
    """How long ago the payment's row was last written, by the database's clock."""
    async with engine.connect() as conn:
        query = text("SELECT now() - updated_at FROM transactions WHERE id = :id")
        return (await conn.execute(query, {"id": tx_id})).scalar_one()  # type: ignore[no-any-return]


async def logs_about(engine: AsyncEngine, subject: str) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT discrepancy, resolution_status FROM reconciliation_logs WHERE subject = :s ORDER BY id"),
            {"s": subject},
        )
        return [(d, s) for d, s in rows]


async def subjects_logged_by(engine: AsyncEngine, run_id: str, subjects: tuple[str, ...]) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT subject FROM reconciliation_logs WHERE run_id = :r AND subject = ANY(:s)"),
            {"r": run_id, "s": list(subjects)},
        )
        return list(rows.scalars())


PageStep = Callable[[ReconciliationPage], Awaitable[ReconciliationPageResult]]


def paged(settings: Settings, page_size: int, pages_per_activity: int) -> Settings:
    """The stack's settings with these reconciliation pages, on a task queue of its own."""
    update = {
        "reconciliation_page_size": page_size,
        "reconciliation_pages_per_activity": pages_per_activity,
        "temporal_task_queue": f"recon-{fresh_key()[:8]}",
    }
    return settings.model_copy(update=update)


@asynccontextmanager
async def worker_around_pages(
    client: Client, settings: Settings, around: Callable[[PageStep], PageStep]
) -> AsyncIterator[None]:
    """A worker on `settings`' queue whose reconcile_page activity is `around(the real one)`."""
    parts = build_worker_parts(settings, client)
    reconcile_page = next(a for a in parts.activities if a.__name__ == "reconcile_page")
    try:
        async with Worker(
            client,
            task_queue=settings.temporal_task_queue,
            workflows=[ReconciliationWorkflow],
            workflow_runner=sandboxed_workflow_runner(),
            activities=[a for a in parts.activities if a is not reconcile_page]
            + [activity.defn(name="reconcile_page")(around(reconcile_page))],
        ):
            yield
    finally:
        await parts.close()


async def test_a_capture_we_missed_is_followed_and_posted(
    parties: Parties, temporal_client: Client, stack_settings: Settings, engine: AsyncEngine, emulator_control
) -> None:
    tx = await parties.authorized(1200)
    intent = stripe_intent(stack_settings, tx["id"])
    # Captured out of band, its webhook lost on the way: our books never heard of it.
    captured = {"status": "succeeded", "amount_received": 1200}
    emulator_control("POST", f"/objects/{intent.id}", params={"event": "payment_intent.succeeded"}, json=captured)
    # Written within the margin, the row may be a saga whose own capture write is on its way: not judged yet.
    await reconcile(temporal_client, stack_settings)
    assert (await parties.get(tx["id"]))["status"] == "authorized" and await logs_about(engine, intent.id) == []
    await eventually(lambda: row_age(engine, tx["id"]), lambda age: age > stack_settings.reconciliation_margin, "age")
    await reconcile(temporal_client, stack_settings)
    now = await parties.get(tx["id"])
    assert now["status"] == "confirmed" and now["amount_captured"] == 1200
    assert await logs_about(engine, intent.id) == [("captured_at_stripe", "auto_fixed")]
    async with engine.connect() as conn:
        posted = await conn.execute(
            text("SELECT count(*) FROM ledger_transactions WHERE reference = :r"), {"r": f"capture:{tx['id']}"}
        )
        assert posted.scalar_one() == 1


async def test_rows_whose_stripe_objects_came_after_the_listing_are_not_missing(
    parties: Parties, temporal_client: Client, stack_settings: Settings, engine: AsyncEngine
) -> None:
    """Our rows are read after Stripe's newest-first list: an object made in between is not in the
    pages (a chaos run flagged a payment confirmed meanwhile). Here no Stripe page is read at all."""
    sold = await parties.captured(1300)
    refund = (await parties.refund(sold["id"], 300)).json()
    parts = build_worker_parts(stack_settings, temporal_client)
    by_name = {a.__name__: a for a in parts.activities}
    now = datetime.now(UTC)
    run_id = f"rr_{fresh_key()[:24]}"
    window = (run_id, (now - timedelta(minutes=5)).isoformat(), (now + timedelta(minutes=1)).isoformat())
    try:
        await ActivityEnvironment().run(by_name["open_run"], ReconciliationPage(window[0], "open", *window[1:], None))
        for phase in ("our_transactions", "our_refunds"):
            page = ReconciliationPage(window[0], phase, *window[1:], None)
            while (page_result := await ActivityEnvironment().run(by_name["reconcile_page"], page)).cursor:
                page = dataclasses.replace(page, cursor=page_result.cursor)
    finally:
        await parts.close()
    assert await subjects_logged_by(engine, run_id, (sold["id"], refund["id"])) == []


async def test_money_at_risk_is_flagged_never_fixed(
    parties: Parties, temporal_client: Client, stack_settings: Settings, engine: AsyncEngine, emulator_control
) -> None:
    """Stripe changes nothing without an event: each corruption here is announced (its webhook
    lost), except the PaymentIntent Stripe never had."""
    canceled = await parties.captured(700)
    canceled_intent = stripe_intent(stack_settings, canceled["id"])
    announced = {"event": "payment_intent.canceled"}
    emulator_control("POST", f"/objects/{canceled_intent.id}", params=announced, json={"status": "canceled"})
    different = await parties.captured(800)
    different_intent = stripe_intent(stack_settings, different["id"])
    announced = {"event": "payment_intent.succeeded"}
    emulator_control("POST", f"/objects/{different_intent.id}", params=announced, json={"amount": 8000})
    missing = await parties.captured(900)
    emulator_control("DELETE", f"/objects/{stripe_intent(stack_settings, missing['id']).id}")

    await reconcile(temporal_client, stack_settings)

    assert await logs_about(engine, canceled_intent.id) == [("confirmed_but_canceled_at_stripe", "needs_review")]
    assert await logs_about(engine, different_intent.id) == [("amount_mismatch", "needs_review")]
    assert await logs_about(engine, missing["id"]) == [("confirmed_but_missing_at_stripe", "needs_review")]
    for tx in (canceled, different, missing):
        assert (await parties.get(tx["id"]))["status"] == "confirmed"  # untouched


def _open_authorization(settings: Settings, emulator_control: Callable[..., Any], metadata: dict[str, str]) -> Any:
    """An authorization held at Stripe with no row of ours, old enough to judge."""
    params = {"amount": 500, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    held = sdk(settings).v1.payment_intents.create(params=params | {"capture_method": "manual", "metadata": metadata})
    half_an_hour_ago = int((datetime.now(UTC) - timedelta(minutes=30)).timestamp())
    emulator_control("POST", f"/objects/{held.id}", json={"created": half_an_hour_ago})
    return held


async def test_an_authorization_of_ours_nobody_owns_is_voided(
    parties: Parties, temporal_client: Client, stack_settings: Settings, engine: AsyncEngine, emulator_control
) -> None:
    """Our marker (the payment and merchant ids authorize_payment writes), but no row: an orphan."""
    ours = {"tx_id": f"tx_{fresh_key()}", "merchant_id": parties.merchant_id}
    orphan = _open_authorization(stack_settings, emulator_control, ours)
    await reconcile(temporal_client, stack_settings)
    assert sdk(stack_settings).v1.payment_intents.retrieve(orphan.id).status == "canceled"
    assert await logs_about(engine, orphan.id) == [("orphan_authorization_voided", "auto_fixed")]


async def test_an_authorization_without_our_marker_is_logged_never_voided(
    worker: Worker, temporal_client: Client, stack_settings: Settings, engine: AsyncEngine, emulator_control
) -> None:
    """Another integration on the account (a shop's POS) holds authorizations of its own."""
    foreign = _open_authorization(stack_settings, emulator_control, {"order": "pos-1234"})
    await reconcile(temporal_client, stack_settings)
    assert sdk(stack_settings).v1.payment_intents.retrieve(foreign.id).status == "requires_capture"
    assert await logs_about(engine, foreign.id) == [("foreign_authorization", "needs_review")]


async def _crashed_payment(engine: AsyncEngine, parties: Parties, status: str, intent_id: str | None) -> str:
    """A row as a crashed saga leaves it: open, long untouched, its workflow gone."""
    tx_id = f"tx_{fresh_key()}"
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO transactions (id, user_id, merchant_id, amount, amount_captured, amount_refunded, "
                "currency, status, idempotency_key, request_fingerprint, card_token, card_token_key_id, "
                "stripe_payment_intent_id, workflow_id, created_at, updated_at) VALUES (:id, :u, :m, 600, 0, 0, "
                "'usd', :status, :id, 'f', 'x', 'k', :pi, :wf, now() - interval '1 minute', "
                "now() - interval '1 minute')"
            ),
            {
                "id": tx_id,
                "u": parties.user_id,
                "m": parties.merchant_id,
                "status": status,
                "pi": intent_id,
                "wf": f"payment:gone:{tx_id}",
            },
        )
    return tx_id


async def test_stuck_payments_are_settled_from_stripes_state(
    parties: Parties, temporal_client: Client, stack_settings: Settings, engine: AsyncEngine
) -> None:
    intent = sdk(stack_settings).v1.payment_intents.create(
        params={
            "amount": 600,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "capture_method": "manual",
        }
    )
    held = await _crashed_payment(engine, parties, "authorized", intent.id)
    sdk(stack_settings).v1.payment_intents.update(intent.id, params={"metadata": {"tx_id": held}})
    never_authorized = await _crashed_payment(engine, parties, "pending", None)
    declined = await _crashed_payment(engine, parties, "declined", None)  # its declines announced already

    await reconcile(temporal_client, stack_settings)

    assert (await parties.get(held))["status"] == "canceled"
    assert sdk(stack_settings).v1.payment_intents.retrieve(intent.id).status == "canceled"  # the hold is released
    ends = [await parties.get(tx_id) for tx_id in (never_authorized, declined)]
    assert [(end["status"], end["failure_code"]) for end in ends] == [
        ("failed", "abandoned"),
        ("failed", "abandoned_after_decline"),
    ]
    for tx_id in (held, never_authorized, declined):
        assert await logs_about(engine, tx_id) == [("stuck_payment_settled", "auto_fixed")]


async def test_refunds_and_transfers_missing_on_either_side_or_twice(
    parties: Parties, temporal_client: Client, stack_settings: Settings, engine: AsyncEngine, emulator_control
) -> None:
    client = sdk(stack_settings)
    sold = await parties.captured(2000)
    stray_refund = client.v1.refunds.create(
        params={"payment_intent": stripe_intent(stack_settings, sold["id"]).id, "amount": 100}
    )
    ours = (await parties.refund(sold["id"], 200)).json()
    emulator_control("DELETE", f"/objects/{(await _stripe_refund_of(client, ours['id'])).id}")
    account = (await parties.api.get(f"/merchants/{parties.merchant_id}", headers=parties.auth("operator"))).json()
    stray_transfer = client.v1.transfers.create(
        params={"amount": 50, "currency": "usd", "destination": account["payout_account"]}
    )
    payout = (
        await parties.api.post(
            "/payouts/schedule",
            json={"merchant_id": parties.merchant_id, "amount": 300, "idempotency_key": fresh_key()},
            headers=parties.as_merchant,
        )
    ).json()
    await _until_paid(engine, payout["id"])
    second_transfer = client.v1.transfers.create(  # a second transfer that names our payout
        params={
            "amount": 300,
            "currency": "usd",
            "destination": account["payout_account"],
            "metadata": {"payout_id": payout["id"]},
        }
    )
    async with engine.begin() as conn:  # a crash before the paid write landed, longer ago than the margin
        crashed_at = datetime.now(UTC) - stack_settings.reconciliation_margin - timedelta(seconds=1)
        stuck = update(Payout).where(Payout.id == payout["id"]).values(status="in_transit", updated_at=crashed_at)
        await conn.execute(stuck)

    await reconcile(temporal_client, stack_settings)

    assert await logs_about(engine, stray_refund.id) == [("stripe_refund_without_record", "needs_review")]
    assert await logs_about(engine, ours["id"]) == [("refund_missing_at_stripe", "needs_review")]
    assert await logs_about(engine, stray_transfer.id) == [("stripe_transfer_without_payout", "needs_review")]
    assert await logs_about(engine, second_transfer.id) == [("second_transfer", "needs_review")]
    listed = (await parties.api.get(f"/merchants/{parties.merchant_id}/payouts", headers=parties.as_merchant)).json()
    assert next(p for p in listed["data"] if p["id"] == payout["id"])["status"] == "paid"


async def _stripe_refund_of(client: stripe.StripeClient, refund_id: str) -> Any:
    refunds = client.v1.refunds.list(params={"limit": 100}).auto_paging_iter()
    return next(r for r in refunds if r.metadata.to_dict().get("refund_id") == refund_id)


async def _until_paid(engine: AsyncEngine, payout_id: str) -> None:
    async def status() -> str | None:
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT status FROM payouts WHERE id = :p"), {"p": payout_id})).scalar()

    await eventually(status, lambda s: s == "paid", f"payout {payout_id} to be paid")


async def _post_to_payable(engine: AsyncEngine, merchant_id: str, amount: int) -> None:
    """A hand-made posting between stripe_clearing and a merchant's payable, as an operator might."""
    payable = f"merchant_payable:{merchant_id}"
    async with engine.begin() as conn:
        new_tx = text("INSERT INTO ledger_transactions (reference) VALUES (:r) RETURNING id")
        ledger_tx = (await conn.execute(new_tx, {"r": f"manual:{uuid.uuid4()}"})).scalar_one()
        new_account = text("INSERT INTO ledger_accounts (code) VALUES (:c) ON CONFLICT DO NOTHING")
        for code in (payable, "stripe_clearing"):
            await conn.execute(new_account, {"c": code})
        await conn.execute(
            text(
                "INSERT INTO ledger_entries (ledger_transaction_id, account_id, amount, currency) "
                "SELECT :t, id, CAST(:a AS bigint) * CASE WHEN code = 'stripe_clearing' THEN 1 ELSE -1 END, 'usd' "
                "FROM ledger_accounts WHERE code IN (:p, 'stripe_clearing')"
            ),
            {"t": ledger_tx, "p": payable, "a": amount},
        )


async def test_a_payable_the_ledger_cannot_explain_is_flagged_and_a_rerun_finds_nothing_new(
    parties: Parties, temporal_client: Client, stack_settings: Settings, engine: AsyncEngine
) -> None:
    sale = await parties.captured(1000)
    await _post_to_payable(engine, parties.merchant_id, 77)  # balanced, so accepted; but no sale explains it
    first_run, _ = await reconcile(temporal_client, stack_settings)
    assert await logs_about(engine, parties.merchant_id) == [("merchant_payable_mismatch", "needs_review")]
    await _post_to_payable(engine, parties.merchant_id, -77)  # the operator's reversing correction

    second_run, _ = await reconcile(temporal_client, stack_settings)
    # Nothing new about what this test made. Not the run's total: objects other tests left in the
    # window may come of age (the margin, stuck_after) between the two runs, and rightly be logged.
    mine = (parties.merchant_id, sale["id"], stripe_intent(stack_settings, sale["id"]).id)
    assert await subjects_logged_by(engine, second_run, mine) == []
    operator = parties.auth("operator")
    runs = (await parties.api.get("/reconciliation/runs", headers=operator)).json()["data"]
    assert {second_run, first_run} <= {r["id"] for r in runs}
    assert next(r for r in runs if r["id"] == second_run)["status"] == "finished"

    open_logs = await parties.api.get(
        "/reconciliation/logs", params={"status": "needs_review", "run_id": first_run}, headers=operator
    )
    mine = next(log for log in open_logs.json()["data"] if log["subject"] == parties.merchant_id)
    resolved = await parties.api.post(
        f"/reconciliation/logs/{mine['id']}/resolve", json={"resolution": "manual credit, approved"}, headers=operator
    )
    assert resolved.status_code == 200 and resolved.json()["resolved_by"] == "op_test"
    again = await parties.api.post(
        f"/reconciliation/logs/{mine['id']}/resolve", json={"resolution": "x"}, headers=operator
    )
    assert again.status_code == 409
    as_merchant = await parties.api.get("/reconciliation/logs", headers=parties.as_merchant)
    assert as_merchant.status_code == 403


async def test_the_command_line_shows_the_bar_moving_and_exits_by_the_result(
    parties: Parties, temporal_client: Client, stack_settings: Settings, emulator_control
) -> None:
    """`payments reconcile` in its own process, against a worker that reads one object per page and
    holds the first page of each phase until the command has drawn the bar as it stands before it:
    so the bar shows every phase whatever the machine's speed. The window starts with this test's
    own payments: its length is theirs, not that of every payment the tests before it made. A
    capture canceled at Stripe makes the result "needs review", so the exit code must be 1."""
    since = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    for _ in range(5):
        await parties.captured(300)
    flagged = await parties.captured(400)
    emulator_control(
        "POST",
        f"/objects/{stripe_intent(stack_settings, flagged['id']).id}",
        params={"event": "payment_intent.canceled"},
        json={"status": "canceled"},
    )
    one_per_page = paged(stack_settings, 1, 1)
    printed, held = "", set[str]()

    async def draws() -> int:  # each redraw starts with "\r["
        return printed.count("\r[")

    def first_of_each_phase_once_drawn(reconcile_page: PageStep) -> PageStep:
        async def reconcile_page_once_drawn(page: ReconciliationPage) -> ReconciliationPageResult:
            if page.phase not in held:
                held.add(page.phase)
                # Three redraws read: the last one's query was sent after this page began, even with
                # a redraw written and not yet read when it did.
                before = await draws()
                await eventually(draws, lambda drawn: drawn >= before + 3, "the command to draw the bar", 30)
            return await reconcile_page(page)

        return reconcile_page_once_drawn

    async with worker_around_pages(temporal_client, one_per_page, first_of_each_phase_once_drawn):
        command = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "payments", "reconcile", "--since", since, "--poll", "0.05"),
            env=command_env(one_per_page),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert command.stdout and command.stderr

        async def read_output() -> None:
            nonlocal printed
            while chunk := await command.stdout.read(4096):  # type: ignore[union-attr]
                printed += chunk.decode()

        try:
            _, err = await asyncio.wait_for(asyncio.gather(read_output(), command.stderr.read()), 90)
            await command.wait()
        finally:
            if command.returncode is None:  # one that hangs at exit fails the test instead of hanging it
                command.kill()
                await command.wait()

    assert "run rr_" in printed, (printed, err.decode())
    bars = [line.strip() for line in printed.split("\r") if line.startswith("[")]
    assert set(PHASES) <= {bar.split()[2] for bar in bars}, bars  # the bar moved through every phase
    to_review = int(re.search(r"(\d+) to review", bars[-1]).group(1))  # type: ignore[union-attr]
    assert to_review >= 1 and command.returncode == 1, (bars[-1], command.returncode, err.decode())


async def test_a_dispute_we_never_heard_of_is_flagged(
    worker: Worker, temporal_client: Client, stack_settings: Settings, engine: AsyncEngine
) -> None:
    client = sdk(stack_settings)
    params = {"amount": 2100, "currency": "usd", "payment_method": "pm_card_createDispute", "confirm": True}
    intent = client.v1.payment_intents.create(params=params)  # charged outside our platform, then disputed
    dispute = client.v1.disputes.list(params={"payment_intent": intent.id}).data[0]
    await reconcile(temporal_client, stack_settings)
    assert await logs_about(engine, dispute.id) == [("stripe_dispute_without_record", "needs_review")]
    second_run, _ = await reconcile(temporal_client, stack_settings)
    assert await subjects_logged_by(engine, second_run, (dispute.id,)) == []


async def test_one_activity_reads_several_pages_of_changes_and_skips_none(
    parties: Parties, temporal_client: Client, stack_settings: Settings, engine: AsyncEngine, emulator_control
) -> None:
    """Pages of 2 events, 3 to an activity: every activity but the last reads 6 events, and a
    discrepancy deep in the list (a later page of some activity) is still found."""
    flagged = await parties.captured(500)
    flagged_intent = stripe_intent(stack_settings, flagged["id"]).id
    announced = {"event": "payment_intent.succeeded"}
    emulator_control("POST", f"/objects/{flagged_intent}", params=announced, json={"amount": 5000})
    for _ in range(7):
        await parties.captured(300)  # newer: listed first, so the flagged change comes on a later page
    read: list[int] = []

    def counted(reconcile_page: PageStep) -> PageStep:
        async def counted_reconcile_page(page: ReconciliationPage) -> ReconciliationPageResult:
            result = await reconcile_page(page)
            if page.phase == "stripe_changes":
                read.append(result.counts.get("events", 0))
            return result

        return counted_reconcile_page

    settings = paged(stack_settings, 2, 3)
    async with worker_around_pages(temporal_client, settings, counted):
        run_id, _ = await reconcile(temporal_client, settings)

    assert len(read) >= 2 and set(read[:-1]) == {6} and 1 <= read[-1] <= 6, read
    assert await subjects_logged_by(engine, run_id, (flagged_intent,)) == [flagged_intent]


async def _status_of(engine: AsyncEngine, table: str, row_id: str) -> str:
    async with engine.connect() as conn:
        query = text(f"SELECT status FROM {table} WHERE id = :id")  # noqa: S608 (the tests' own table names)
        return str((await conn.execute(query, {"id": row_id})).scalar_one())


async def test_a_refund_and_a_payout_whose_workflows_temporal_lost_are_made_once(
    parties: Parties, temporal_client: Client, stack_settings: Settings, engine: AsyncEngine
) -> None:
    """Temporal's database lost after the refund was accepted and the payout reserved, before
    either reached Stripe: reconciliation starts each one's workflow again, and Stripe sees one call."""
    sold = await parties.captured(2000)
    lost_at = datetime.now(UTC) - stack_settings.reconciliation_gone_after - timedelta(seconds=1)
    refund_id = f"rf_{fresh_key()}"
    async with engine.begin() as conn:  # the row as reserve_refund writes it
        await conn.execute(
            text(
                "INSERT INTO refunds (id, tx_id, amount, currency, status, idempotency_key, created_at, updated_at) "
                "VALUES (:id, :tx, 300, 'usd', 'pending', :key, :at, :at)"
            ),
            {"id": refund_id, "tx": sold["id"], "key": fresh_key(), "at": lost_at},
        )
    reserve = PayoutRequest(parties.merchant_id, fresh_key(), "lost", 200, "usd")
    payout = await PayoutRecords(session_factory(engine)).reserve_payout(
        ReserveRequest(f"po_{fresh_key()[:24]}", reserve)
    )
    async with engine.begin() as conn:
        await conn.execute(update(Payout).where(Payout.id == payout.payout_id).values(updated_at=lost_at))

    await reconcile(temporal_client, stack_settings)

    await eventually(lambda: _status_of(engine, "refunds", refund_id), lambda s: s == "succeeded", "the lost refund")
    await eventually(lambda: _status_of(engine, "payouts", payout.payout_id), lambda s: s == "paid", "the lost payout")
    client = sdk(stack_settings)
    refunds = client.v1.refunds.list(params={"limit": 100}).auto_paging_iter()
    made = [r for r in refunds if r.metadata.to_dict().get("refund_id") == refund_id]
    assert [r.amount for r in made] == [300]
    paid = [
        t
        for t in client.v1.transfers.list(params={"limit": 100}).auto_paging_iter()
        if t.metadata.to_dict().get("payout_id") == payout.payout_id
    ]
    assert [t.amount for t in paid] == [200]
    assert await logs_about(engine, refund_id) == [("refund_workflow_lost", "auto_fixed")]
    assert await logs_about(engine, payout.payout_id) == [("payout_workflow_lost", "auto_fixed")]
