"""The books on the real stack: Stripe's fee posted with each capture, and a payout's statement
whose lines (payments, refunds, fees) sum to the payout, as JSON pages and as CSV."""

import asyncio
import csv
import io
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from payments.activities.metrics import REGISTRY
from payments.config.settings import Settings
from payments.schema.messages import PayoutRunInput, RecoveryRequest, StripeBalanceCheck
from payments.schema.tables import Dispute
from payments.workflows.payout import PayoutRunWorkflow
from payments.workflows.recovery import BalanceRecoveryWorkflow
from payments.workflows.stripe_balance import StripeBalanceWorkflow
from tests.integration.conftest import Parties, command_env, stripe_intent
from tests.integration.disputes.test_disputes import dispute_of
from tests.integration.payouts.test_payouts import merchant_with_sales, wait_for_payout
from tests.integration.reconciliation.test_reconciliation import reconcile
from tests.services import eventually, fresh_key


def stripe_client(settings: Settings) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_emulator", base_addresses={"api": settings.stripe_api_base})


def charge_txn(settings: Settings, tx_id: str) -> stripe.BalanceTransaction:
    """The balance transaction of the payment's charge at Stripe."""
    intent = stripe_intent(settings, tx_id)
    charge = stripe_client(settings).v1.charges.retrieve(str(intent.latest_charge))
    return stripe_client(settings).v1.balance_transactions.retrieve(str(charge.balance_transaction))


async def posting(engine: AsyncEngine, reference: str) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("""
                SELECT a.code, e.amount FROM ledger_entries e
                JOIN ledger_accounts a ON a.id = e.account_id
                JOIN ledger_transactions t ON t.id = e.ledger_transaction_id
                WHERE t.reference = :reference
            """),
            {"reference": reference},
        )
        return {code: int(amount) for code, amount in rows}


async def paid_out(seller: Parties) -> dict[str, Any]:
    body = {"merchant_id": seller.merchant_id, "idempotency_key": fresh_key()}
    payout = await seller.api.post("/payouts/schedule", json=body, headers=seller.as_merchant)
    assert payout.status_code == 202, payout.text
    return await wait_for_payout(seller, payout.json()["id"], "paid")


async def test_a_capture_posts_stripes_fee_from_its_balance_transaction(
    parties: Parties, engine: AsyncEngine, stack_settings: Settings
) -> None:
    tx = await parties.captured(10_000)
    txn = charge_txn(stack_settings, tx["id"])
    assert (txn.amount, txn.fee, txn.net) == (10_000, 320, 9_680)  # 2.9 % + 30 cents
    assert [d.type for d in txn.fee_details] == ["stripe_fee"] and txn.available_on >= txn.created
    assert await posting(engine, f"stripe_fee:{tx['id']}") == {"stripe_fees": 320, "stripe_clearing": -320}
    capture = await posting(engine, f"capture:{tx['id']}")
    # The platform's net revenue on this payment: its fee less Stripe's.
    assert -capture["platform_revenue"] - 320 == 250 - 320


async def test_a_payouts_statement_lists_what_it_settled_and_sums_to_it(parties: Parties, engine: AsyncEngine) -> None:
    seller = await merchant_with_sales(parties, "daily", 1000, 2000)
    refunded = await seller.captured(4000)
    assert (await seller.refund(refunded["id"], 1000)).status_code == 201
    payout = await paid_out(seller)
    assert payout["amount"] == (1000 - 25) + (2000 - 50) + (4000 - 100) - (1000 - 25)

    first = await seller.api.get(f"/payouts/{payout['id']}/statement?limit=2", headers=seller.as_merchant)
    assert first.status_code == 200, first.text
    statement = first.json()
    rest = await seller.api.get(
        f"/payouts/{payout['id']}/statement?limit=2&cursor={statement['next_cursor']}", headers=seller.as_merchant
    )
    lines = statement["data"] + rest.json()["data"]
    assert rest.json()["next_cursor"] is None and len(lines) == 4
    assert [(line["kind"], line["amount"], line["fee"], line["net"]) for line in lines] == [
        ("payment", 1000, 25, 975),
        ("payment", 2000, 50, 1950),
        ("payment", 4000, 100, 3900),
        ("refund", -1000, -25, -975),
    ]
    assert lines[3]["tx_id"] == refunded["id"]
    totals = statement["totals"]
    assert sum(line["net"] for line in lines) == totals["net"] == payout["amount"] == totals["payout"]
    assert totals["carried_over"] == 0 and totals["by_kind"]["payment"]["count"] == 3

    as_csv = await seller.api.get(
        f"/payouts/{payout['id']}/statement", headers=seller.as_merchant | {"Accept": "text/csv"}
    )
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["kind"] for r in rows] == ["payment", "payment", "payment", "refund", "carried_over", "payout"]
    assert sum(int(r["net"]) for r in rows[:-1]) == int(rows[-1]["net"]) == payout["amount"]
    same = await seller.api.get(f"/payouts/{payout['id']}/statement?format=csv", headers=seller.auth("operator"))
    assert same.text == as_csv.text

    other = await seller.api.get(f"/payouts/{payout['id']}/statement", headers=parties.as_merchant)
    assert other.status_code == 404  # another merchant's payout is as good as missing
    async with engine.connect() as conn:
        paid = await conn.execute(
            text("SELECT payload FROM outbox_events WHERE type = 'payout.paid' AND aggregate_id = :id"),
            {"id": payout["id"]},
        )
        # What the merchant's webhook endpoints receive (the fan-out sends the payload as it is).
        assert paid.scalar_one()["statement_url"] == f"/payouts/{payout['id']}/statement"


async def test_the_next_payout_settles_only_what_came_after(parties: Parties) -> None:
    seller = await merchant_with_sales(parties, "daily", 1000)
    first = await paid_out(seller)
    sold = await seller.captured(3000)
    second = await paid_out(seller)
    statement = (await seller.api.get(f"/payouts/{second['id']}/statement", headers=seller.as_merchant)).json()
    assert [(line["tx_id"], line["net"]) for line in statement["data"]] == [(sold["id"], 2925)]
    assert statement["totals"]["payout"] == second["amount"] == 2925 and first["amount"] == 975


async def settlement_logs(engine: AsyncEngine, *subjects: str) -> dict[str, list[str]]:
    """The three-way match's findings about these subjects, by subject."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("""
                SELECT subject, discrepancy || '/' || resolution_status FROM reconciliation_logs
                WHERE subject = ANY(:s) AND discrepancy = ANY(:classes) ORDER BY id
            """),
            {"s": list(subjects), "classes": list(SETTLEMENT_CLASSES)},
        )
        found: dict[str, list[str]] = {}
        for subject, finding in rows:
            found.setdefault(subject, []).append(finding)
        return found


SETTLEMENT_CLASSES = (
    "stripe_fee_not_posted",
    "stripe_fee_mismatch",
    "stripe_net_mismatch",
    "payment_not_paid_out",
    "transfer_settlement_mismatch",
)


async def transfer_of(engine: AsyncEngine, payout_id: str) -> str:
    async with engine.connect() as conn:
        query = text("SELECT stripe_transfer_id FROM payouts WHERE id = :id")
        return str((await conn.execute(query, {"id": payout_id})).scalar_one())


async def test_the_three_way_match_is_clean_and_finds_each_injected_difference(
    parties: Parties, engine: AsyncEngine, stack_settings: Settings, temporal_client: Client, emulator_control
) -> None:
    clean = await merchant_with_sales(parties, "daily", 1500, 2500)
    partly_refunded = await clean.captured(3000)
    assert (await clean.refund(partly_refunded["id"], 500)).status_code == 201
    clean_payout = await paid_out(clean)

    seller = await merchant_with_sales(parties, "daily")
    fee_changed, transferred = await seller.captured(2000), await seller.captured(1000)
    wrong_transfer = await paid_out(seller)
    never_paid = await seller.captured(4000)
    captured_elsewhere = await seller.authorized(700)  # captured at Stripe, not through us: no fee read

    changed_txn = charge_txn(stack_settings, fee_changed["id"])
    emulator_control("POST", f"/objects/{changed_txn.id}", json={"fee": 500, "net": 1500}).raise_for_status()
    transfer_id = await transfer_of(engine, wrong_transfer["id"])
    emulator_control("POST", f"/objects/{transfer_id}", json={"amount": wrong_transfer["amount"] - 100})
    forty_days_ago = int((datetime.now(UTC) - timedelta(days=40)).timestamp())
    emulator_control(
        "POST", f"/objects/{charge_txn(stack_settings, never_paid['id']).id}", json={"available_on": forty_days_ago}
    )
    stripe_client(stack_settings).v1.payment_intents.capture(stripe_intent(stack_settings, captured_elsewhere["id"]).id)

    await reconcile(temporal_client, stack_settings)
    clean_ids = [clean_payout["id"], await transfer_of(engine, clean_payout["id"]), partly_refunded["id"]]
    assert await settlement_logs(engine, *clean_ids) == {}
    found = await settlement_logs(
        engine, fee_changed["id"], transferred["id"], transfer_id, never_paid["id"], captured_elsewhere["id"]
    )
    assert found == {
        fee_changed["id"]: ["stripe_fee_mismatch/needs_review"],
        transfer_id: ["transfer_settlement_mismatch/needs_review"],
        never_paid["id"]: ["payment_not_paid_out/needs_review"],
        captured_elsewhere["id"]: ["stripe_fee_not_posted/auto_fixed"],
    }
    assert await posting(engine, f"stripe_fee:{captured_elsewhere['id']}") == {
        "stripe_fees": 50,
        "stripe_clearing": -50,
    }

    await reconcile(temporal_client, stack_settings)  # a second run finds nothing new
    assert (
        await settlement_logs(engine, fee_changed["id"], transfer_id, never_paid["id"], captured_elsewhere["id"])
        == found
    )


async def test_a_capture_days_after_its_authorization_is_matched_in_the_run_that_saw_the_capture(
    parties: Parties, engine: AsyncEngine, stack_settings: Settings, temporal_client: Client, emulator_control
) -> None:
    """Capture at shipping: the payment was authorized three days before this run's window, and
    captured inside it. The match follows the money (Stripe's balance transaction), not the
    payment's creation time, so the fee Stripe changed is found."""
    seller = await merchant_with_sales(parties, "daily")
    tx = await seller.authorized(2000)
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE transactions SET created_at = :at WHERE id = :id"), {"at": three_days_ago, "id": tx["id"]}
        )
    intent = stripe_intent(stack_settings, tx["id"])
    emulator_control("POST", f"/objects/{intent.id}", json={"created": int(three_days_ago.timestamp())})
    assert (await seller.confirm(tx["id"])).status_code == 200
    txn = charge_txn(stack_settings, tx["id"])
    emulator_control("POST", f"/objects/{txn.id}", json={"fee": txn.fee + 25, "net": txn.net - 25}).raise_for_status()

    await reconcile(temporal_client, stack_settings)
    assert await settlement_logs(engine, tx["id"]) == {tx["id"]: ["stripe_fee_mismatch/needs_review"]}


async def balance_check(client: Client, settings: Settings) -> StripeBalanceCheck:
    checks = await client.execute_workflow(
        StripeBalanceWorkflow.run, id=f"stripe-balance-test:{fresh_key()}", task_queue=settings.temporal_task_queue
    )
    return next(c for c in checks if c.currency == "usd")


async def test_the_daily_balance_check_follows_stripes_balance_with_the_ledger(
    parties: Parties, temporal_client: Client, stack_settings: Settings
) -> None:
    """Other tests of the session leave their own differences: this one compares movements."""
    before = await balance_check(temporal_client, stack_settings)
    seller = await merchant_with_sales(parties, "daily", 5000)
    sold = await seller.captured(2000)
    assert (await seller.refund(sold["id"], 700)).status_code == 201
    await paid_out(seller)
    after = await balance_check(temporal_client, stack_settings)
    moved = after.stripe - before.stripe
    assert moved == (5000 - 175) + (2000 - 88) - 700 - (4875 + 1950 - (700 - 17)) != 0
    assert after.ledger - before.ledger == moved and after.unexplained == before.unexplained

    # A charge our books never heard of (made straight at Stripe): Stripe's balance moves alone.
    stripe_client(stack_settings).v1.payment_intents.create(
        params={"amount": 1000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa"}
    )
    off = await balance_check(temporal_client, stack_settings)
    assert (off.stripe - after.stripe, off.ledger - after.ledger) == (1000 - 59, 0)
    assert off.unexplained != after.unexplained
    assert REGISTRY.get_sample_value("payments_stripe_balance_unexplained", {"currency": "usd"}) == off.unexplained


async def month_end(parties: Parties) -> dict[str, int]:
    month = datetime.now(UTC).strftime("%Y-%m")
    report = await parties.api.get("/reports/month-end", params={"month": month}, headers=parties.auth("operator"))
    assert report.status_code == 200, report.text
    return {
        k: v for k, v in next(f for f in report.json()["data"] if f["currency"] == "usd").items() if k != "currency"
    }


async def payouts_run(client: Client, settings: Settings) -> None:
    run = PayoutRunInput("daily", concurrency=3, page_size=50, hold_seconds=0, period=f"books-{fresh_key()[:8]}")
    await client.execute_workflow(
        PayoutRunWorkflow.run, run, id=f"payout-run-test:{fresh_key()}", task_queue=settings.temporal_task_queue
    )


async def disputed(seller: Parties, engine: AsyncEngine, amount: int) -> Dispute:
    tx = await seller.authorized(amount, "pm_card_createDispute")
    assert (await seller.confirm(tx["id"])).status_code == 200
    return await dispute_of(engine, tx["id"])


def stripe_side(settings: Settings, *objects: Any) -> list[stripe.BalanceTransaction]:
    """The balance transactions of these Stripe objects (charges, refunds, disputes, transfers, reversals)."""
    client = stripe_client(settings)
    txns = []
    for source in objects:
        txns += client.v1.balance_transactions.list(params={"source": source, "limit": 100}).data
    return txns


@pytest.mark.timeout(300)
async def test_a_month_closes_statements_the_report_and_the_three_way_match_agree(
    parties: Parties, engine: AsyncEngine, stack_settings: Settings, temporal_client: Client, emulator_control
) -> None:
    """A month of one merchant: captures, partial refunds, a dispute lost and one won, two payout
    runs, a refund after the first that leaves a deficit recovered from its transfer. The report's
    movements match the ledger and Stripe's balance transactions to the cent."""
    await payouts_run(temporal_client, stack_settings)  # earlier tests' merchants are paid before we count
    before = await month_end(parties)
    seller = await merchant_with_sales(parties, "daily")
    sales = [await seller.captured(amount) for amount in (10_000, 5_000, 3_000)]
    assert (await seller.refund(sales[1]["id"], 1_000)).status_code == 201
    lost, won = await disputed(seller, engine, 2_000), await disputed(seller, engine, 4_000)
    assert (await seller.api.post(f"/disputes/{lost.id}/accept", headers=seller.as_merchant)).status_code == 200
    emulator_control("POST", f"/disputes/{won.stripe_dispute_id}/close", json={"outcome": "won"}).raise_for_status()
    await dispute_of(engine, won.tx_id, "won")
    await eventually(lambda: posting(engine, f"dispute:{lost.id}:withdrawal"), bool, "the withdrawal posted")
    await eventually(lambda: posting(engine, f"dispute:{won.id}:reinstatement"), bool, "the reinstatement posted")
    await payouts_run(temporal_client, stack_settings)
    assert (await seller.refund(sales[2]["id"])).status_code == 201  # after the payout: a deficit
    recovery = RecoveryRequest(seller.merchant_id, f"books-{fresh_key()}", 0)
    reversed_ = await temporal_client.execute_workflow(
        BalanceRecoveryWorkflow.run, recovery, id=recovery.recovery_id, task_queue=stack_settings.temporal_task_queue
    )
    assert [r.amount for r in reversed_] == [3_000 - 75]
    late = await seller.captured(6_000)
    await payouts_run(temporal_client, stack_settings)

    listed = await seller.api.get(f"/merchants/{seller.merchant_id}/payouts", headers=seller.as_merchant)
    payouts = sorted(listed.json()["data"], key=lambda p: p["created_at"])
    assert [p["status"] for p in payouts] == ["paid", "paid"]
    for payout in payouts:
        statement = (await seller.api.get(f"/payouts/{payout['id']}/statement", headers=seller.as_merchant)).json()
        assert sum(line["net"] for line in statement["data"]) == payout["amount"] == statement["totals"]["payout"]
        assert statement["totals"]["carried_over"] == 0
    second = (await seller.api.get(f"/payouts/{payouts[1]['id']}/statement", headers=seller.as_merchant)).json()
    assert {line["kind"] for line in second["data"]} == {"payment", "refund", "transfer_reversal"}
    assert payouts[1]["amount"] == 6_000 - 150  # the refund and its recovery cancel out

    month = datetime.now(UTC).strftime("%Y-%m")
    own = await seller.api.get(f"/merchants/{seller.merchant_id}/statements/{month}", headers=seller.as_merchant)
    assert own.status_code == 200, own.text
    movements = {kind: m["amount"] for kind, m in own.json()["movements"].items()}
    assert own.json()["opening_balance"] == 0 == own.json()["closing_balance"] == sum(movements.values())
    assert movements["payout"] == -sum(p["amount"] for p in payouts) and movements["transfer_reversal"] == 2_925

    after = await month_end(parties)
    moved = {k: after[k] - before[k] for k in after}
    captured = [s["id"] for s in sales] + [lost.tx_id, won.tx_id, late["id"]]
    charges = [str(stripe_intent(stack_settings, tx).latest_charge) for tx in captured]
    charge_txns = stripe_side(stack_settings, *charges)
    client = stripe_client(stack_settings)
    refunds = [
        r.id
        for tx in (sales[1], sales[2])
        for r in client.v1.refunds.list(params={"payment_intent": stripe_intent(stack_settings, tx["id"]).id}).data
    ]
    transfers = [await transfer_of(engine, p["id"]) for p in payouts]
    reversals = [r.id for t in transfers for r in client.v1.transfers.reversals.list(t).data]
    refund_txns, dispute_txns = (
        stripe_side(stack_settings, *refunds),
        stripe_side(stack_settings, lost.stripe_dispute_id, won.stripe_dispute_id),
    )
    transfer_txns, reversal_txns = stripe_side(stack_settings, *transfers), stripe_side(stack_settings, *reversals)
    our_fees = sum(amount * 250 // 10_000 for amount in (10_000, 5_000, 3_000, 2_000, 4_000, 6_000)) - 25 - 75
    assert moved == {
        "gross_volume": sum(t.amount for t in charge_txns),
        "refunds": -sum(t.amount for t in refund_txns),
        "disputes": -sum(t.net for t in dispute_txns),
        "our_fees": our_fees,
        "stripe_fees": sum(t.fee for t in charge_txns),
        "net_revenue": our_fees - sum(t.fee for t in charge_txns),
        "paid_out": -sum(t.amount for t in transfer_txns),
        "recovered_from_merchants": sum(t.amount for t in reversal_txns),
        "owed_to_merchants": 0,  # everything it earned was paid out
        "stripe_balance": sum(t.net for t in charge_txns + refund_txns + dispute_txns + transfer_txns + reversal_txns),
    }
    assert moved["gross_volume"] == 30_000 and moved["disputes"] == 2_000 + 2 * 1_500
    assert sum(t.fee for t in charge_txns) == sum(
        a * 290 // 10_000 + 30 for a in (10_000, 5_000, 3_000, 2_000, 4_000, 6_000)
    )

    await reconcile(temporal_client, stack_settings)
    subjects = captured + transfers + [p["id"] for p in payouts]
    assert await settlement_logs(engine, *subjects) == {}


async def test_the_month_end_report_as_csv_from_the_api_and_the_command_line_and_for_operators_only(
    parties: Parties, stack_settings: Settings
) -> None:
    await parties.captured(1_000)
    month = datetime.now(UTC).strftime("%Y-%m")
    operator = parties.auth("operator")
    as_json = (await parties.api.get("/reports/month-end", params={"month": month}, headers=operator)).json()
    as_csv = await parties.api.get("/reports/month-end", params={"month": month, "format": "csv"}, headers=operator)
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert rows == [{k: str(v) for k, v in figures.items()} for figures in as_json["data"]]
    usd = next(r for r in rows if r["currency"] == "usd")
    assert int(usd["net_revenue"]) == int(usd["our_fees"]) - int(usd["stripe_fees"])

    command = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "payments", "report", "--month", month),
        env=command_env(stack_settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    printed, errors = await command.communicate()
    assert command.returncode == 0, errors.decode()
    assert list(csv.DictReader(io.StringIO(printed.decode()))) == rows

    refused = await parties.api.get("/reports/month-end", params={"month": month}, headers=parties.as_merchant)
    assert refused.status_code == 403
    bad = await parties.api.get("/reports/month-end", params={"month": "2026-13"}, headers=operator)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"


async def test_a_partial_payout_holds_back_the_rest_for_the_next_and_matches(
    parties: Parties, engine: AsyncEngine, stack_settings: Settings, temporal_client: Client
) -> None:
    seller = await merchant_with_sales(parties, "daily", 4_000)
    body = {"merchant_id": seller.merchant_id, "amount": 1_000, "idempotency_key": fresh_key()}
    asked = await seller.api.post("/payouts/schedule", json=body, headers=seller.as_merchant)
    assert asked.status_code == 202, asked.text
    partial = await wait_for_payout(seller, asked.json()["id"], "paid")
    rest = await paid_out(seller)
    first = (await seller.api.get(f"/payouts/{partial['id']}/statement", headers=seller.as_merchant)).json()
    second = (await seller.api.get(f"/payouts/{rest['id']}/statement", headers=seller.as_merchant)).json()
    totals = [(s["totals"]["net"], s["totals"]["carried_over"], s["totals"]["payout"]) for s in (first, second)]
    assert totals == [(3_900, -2_900, 1_000), (0, 2_900, 2_900)] and second["data"] == []

    await reconcile(temporal_client, stack_settings)
    transfers = [await transfer_of(engine, p["id"]) for p in (partial, rest)]
    assert await settlement_logs(engine, *transfers) == {}
