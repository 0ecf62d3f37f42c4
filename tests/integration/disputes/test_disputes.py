"""Disputes on the real stack: a disputed card's capture opens a dispute at the emulator, its
webhook starts DisputeWorkflow, and the merchant's balance, the ledger and the events follow
Stripe's outcome. Invariant throughout: the ledger balances, each posting happens once."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from payments.config.settings import Settings
from payments.schema.tables import Dispute, OutboxEvent
from payments.workflows import search_attributes as sa
from tests.integration.conftest import Parties, open_merchant
from tests.integration.payouts.test_payouts import balance, ledger_sums_to_zero, net
from tests.integration.reconciliation.test_reconciliation import reconcile, subjects_logged_by
from tests.services import eventually

DISPUTE_FEE = 1500  # the emulator's, Stripe's US dispute fee


async def cover_at_stripe(parties: Parties, amount: int) -> None:
    """Stripe takes a dispute and its fee from the platform's balance, which the session's payout
    tests transfer from: a sale the platform keeps whole (fee 100 %, so never paid out) covers it."""
    body = {"name": "Cover", "currency": "usd", "fee_bps": 10_000}
    created = await open_merchant(parties.api, parties.auth("operator"), body)
    await Parties(parties.api, parties.auth, parties.user_id, created["id"], 10_000).captured(amount)


async def disputed_sale(parties: Parties, amount: int) -> dict[str, Any]:
    await cover_at_stripe(parties, amount + DISPUTE_FEE)
    tx = await parties.authorized(amount, "pm_card_createDispute")
    confirmed = await parties.confirm(tx["id"])
    assert confirmed.status_code == 200, confirmed.text
    return dict(confirmed.json())


async def dispute_of(engine: AsyncEngine, tx_id: str, status: str | None = None) -> Dispute:
    async def row() -> Dispute | None:
        async with engine.connect() as conn:
            return (await conn.execute(select(Dispute).where(Dispute.tx_id == tx_id))).first()  # type: ignore[return-value]

    what = f"the dispute of {tx_id}" + (f" to be {status}" if status else "")
    return await eventually(row, lambda d: d is not None and (status is None or d.status == status), what, 60)  # type: ignore[return-value]


async def postings(engine: AsyncEngine, dispute_id: str) -> dict[str, dict[str, int]]:
    return await postings_like(engine, f"dispute:{dispute_id}:%")


async def postings_like(engine: AsyncEngine, reference: str) -> dict[str, dict[str, int]]:
    """The ledger postings whose reference is LIKE `reference`: reference -> account -> amount."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT t.reference, a.code, e.amount FROM ledger_entries e "
                "JOIN ledger_transactions t ON t.id = e.ledger_transaction_id "
                "JOIN ledger_accounts a ON a.id = e.account_id WHERE t.reference LIKE :ref ORDER BY e.id"
            ),
            {"ref": reference},
        )
        found: dict[str, dict[str, int]] = {}
        for reference, code, amount in rows:
            found.setdefault(reference, {})[code] = amount
        return found


async def events_of(engine: AsyncEngine, aggregate_id: str) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(OutboxEvent.type).where(OutboxEvent.aggregate_id == aggregate_id).order_by(OutboxEvent.id)
        )
        return list(rows.scalars())


async def test_a_dispute_withdraws_amount_and_fee_from_the_merchant(
    parties: Parties, engine: AsyncEngine, temporal_client: Client
) -> None:
    sale = await disputed_sale(parties, 5000)
    dispute = await dispute_of(engine, sale["id"])
    assert (dispute.amount, dispute.fee, dispute.status) == (5000, DISPUTE_FEE, "needs_response")
    payable = f"merchant_payable:{parties.merchant_id}"
    assert await postings(engine, dispute.id) == {
        f"dispute:{dispute.id}:withdrawal": {payable: 5000 + DISPUTE_FEE, "stripe_clearing": -(5000 + DISPUTE_FEE)}
    }
    now = await balance(parties)
    assert now["available"] == net(5000) - 5000 - DISPUTE_FEE
    assert await events_of(engine, dispute.id) == ["dispute.created"]
    assert await ledger_sums_to_zero(engine)
    timeline = (await parties.api.get(f"/payments/{sale['id']}/timeline", headers=parties.as_merchant)).json()
    assert "dispute.created" in [entry.get("type") for entry in timeline["data"] if entry["kind"] == "event"]
    assert f"dispute:{dispute.id}:withdrawal" in [entry.get("reference") for entry in timeline["data"]]
    handle = temporal_client.get_workflow_handle(dispute.workflow_id)
    described = await eventually(
        handle.describe,
        lambda d: d.typed_search_attributes.get(sa.PAYMENT_STATUS) == "disputed",
        "PaymentStatus=disputed on the dispute's workflow",
    )
    assert described.typed_search_attributes.get(sa.TX_ID) == sale["id"]
    assert dispute.workflow_id == f"dispute:{dispute.stripe_dispute_id}"
    await close_for_the_next_tests(parties, dispute.id)


@contextmanager
def stripe_dispute_fee(emulator_control: Any, fee: int) -> Iterator[None]:
    """Stripe's dispute fee other than the usual, so that a test shows whose fee is posted."""
    assert emulator_control("POST", "/fees", json={"dispute": fee}).status_code == 200
    try:
        yield
    finally:
        assert emulator_control("POST", "/fees", json={"dispute": DISPUTE_FEE}).status_code == 200


async def test_an_inquiry_moves_no_money(parties: Parties, engine: AsyncEngine, emulator_control) -> None:
    tx = await parties.authorized(2000, "pm_card_createDisputeInquiry")
    assert (await parties.confirm(tx["id"])).status_code == 200
    inquiry = await dispute_of(engine, tx["id"])
    assert (inquiry.status, inquiry.fee, inquiry.withdrawn_at) == ("warning_needs_response", 0, None)
    assert await postings(engine, inquiry.id) == {}
    now = await balance(parties)
    assert (now["available"], now["disputed"]) == (net(2000), 0)
    decided = emulator_control("POST", f"/disputes/{inquiry.stripe_dispute_id}/close", json={"outcome": "won"})
    assert decided.status_code == 200, decided.text
    await dispute_answer(parties, inquiry.id, "warning_closed")
    assert await postings(engine, inquiry.id) == {}
    assert await events_of(engine, inquiry.id) == ["dispute.created", "dispute.closed"]
    assert (await balance(parties))["available"] == net(2000)


async def test_funds_withdrawn_posts_the_amount_and_the_fee_of_stripes_balance_transaction(
    parties: Parties, engine: AsyncEngine, emulator_control, temporal_client: Client, stack_settings: Settings
) -> None:
    fee = 2345  # not the usual 1500: the posted fee is Stripe's, read from its balance transaction
    await cover_at_stripe(parties, 3000 + fee)
    with stripe_dispute_fee(emulator_control, fee):
        tx = await parties.authorized(3000, "pm_card_createDisputeInquiry")
        assert (await parties.confirm(tx["id"])).status_code == 200
        inquiry = await dispute_of(engine, tx["id"])
        escalated = emulator_control("POST", f"/disputes/{inquiry.stripe_dispute_id}/escalate")
        assert escalated.status_code == 200, escalated.text
    withdrawal = f"dispute:{inquiry.id}:withdrawal"
    payable = f"merchant_payable:{parties.merchant_id}"
    posted = await eventually(lambda: postings(engine, inquiry.id), lambda p: withdrawal in p, "the withdrawal", 60)
    assert posted == {withdrawal: {payable: 3000 + fee, "stripe_clearing": -(3000 + fee)}}
    dispute = await dispute_of(engine, tx["id"], "needs_response")
    assert dispute.fee == fee and dispute.withdrawn_at is not None
    now = await balance(parties)
    assert (now["available"], now["disputed"]) == (net(3000) - 3000 - fee, 3000)
    assert await ledger_sums_to_zero(engine)
    run_id, _ = await reconcile(temporal_client, stack_settings)  # the payable formula explains it
    assert await subjects_logged_by(engine, run_id, (parties.merchant_id,)) == []
    await close_for_the_next_tests(parties, dispute.id)


async def test_funds_reinstated_posts_the_reinstatement_when_stripe_gives_the_amount_back(
    parties: Parties, engine: AsyncEngine, emulator_control
) -> None:
    sale = await disputed_sale(parties, 2200)
    dispute = await dispute_of(engine, sale["id"])
    submitted = await parties.api.post(
        f"/disputes/{dispute.id}/evidence",
        json={"text": "Tracking 1Z999.", "submit": True},
        headers=parties.as_merchant,
    )
    assert submitted.status_code == 200, submitted.text
    later = {"outcome": "won", "reinstate": False}  # Stripe says won; the money comes back afterwards
    assert emulator_control("POST", f"/disputes/{dispute.stripe_dispute_id}/close", json=later).status_code == 200
    await dispute_answer(parties, dispute.id, "won")
    assert list(await postings(engine, dispute.id)) == [f"dispute:{dispute.id}:withdrawal"]
    assert (await balance(parties))["available"] == net(2200) - 2200 - DISPUTE_FEE

    reinstated = emulator_control("POST", f"/disputes/{dispute.stripe_dispute_id}/reinstate")
    assert reinstated.status_code == 200, reinstated.text
    reinstatement = f"dispute:{dispute.id}:reinstatement"
    posted = await eventually(lambda: postings(engine, dispute.id), lambda p: reinstatement in p, "reinstated", 60)
    assert posted[reinstatement] == {"stripe_clearing": 2200, f"merchant_payable:{parties.merchant_id}": -2200}
    assert (await balance(parties))["available"] == net(2200) - DISPUTE_FEE
    assert await events_of(engine, dispute.id) == ["dispute.created", "dispute.closed"]


async def dispute_answer(parties: Parties, dispute_id: str, status: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        response = await parties.api.get(f"/disputes/{dispute_id}", headers=parties.as_merchant)
        assert response.status_code == 200, response.text
        return dict(response.json())

    return await eventually(read, lambda d: d["status"] == status, f"{dispute_id} to be {status}", 90)


async def test_evidence_submitted_then_won_reinstates_the_amount_not_the_fee(
    parties: Parties, engine: AsyncEngine, emulator_control, temporal_client: Client, stack_settings: Settings
) -> None:
    sale = await disputed_sale(parties, 4000)
    dispute = await dispute_of(engine, sale["id"])
    listed = await parties.api.get("/disputes", params={"status": "needs_response"}, headers=parties.as_merchant)
    assert [d["id"] for d in listed.json()["data"]] == [dispute.id]
    kept = await parties.api.post(
        f"/disputes/{dispute.id}/evidence", json={"text": "Signed for on delivery."}, headers=parties.as_merchant
    )
    assert kept.status_code == 200 and kept.json()["status"] == "needs_response", kept.text
    submitted = await parties.api.post(
        f"/disputes/{dispute.id}/evidence",
        json={"text": "Signed for on delivery.", "submit": True},
        headers=parties.as_merchant,
    )
    assert submitted.status_code == 200 and submitted.json()["status"] == "under_review", submitted.text
    again = await parties.api.post(f"/disputes/{dispute.id}/accept", headers=parties.as_merchant)
    assert again.status_code == 409 and again.json()["error"]["code"] == "dispute_not_open"
    assert again.json()["error"]["dispute_status"] == "under_review"

    decided = emulator_control("POST", f"/disputes/{dispute.stripe_dispute_id}/close", json={"outcome": "won"})
    assert decided.status_code == 200, decided.text
    await dispute_answer(parties, dispute.id, "won")
    payable = f"merchant_payable:{parties.merchant_id}"
    assert (await postings(engine, dispute.id))[f"dispute:{dispute.id}:reinstatement"] == {
        "stripe_clearing": 4000,
        payable: -4000,
    }
    assert (await balance(parties))["available"] == net(4000) - DISPUTE_FEE
    assert await events_of(engine, dispute.id) == ["dispute.created", "dispute.closed"]
    shown = await parties.get(sale["id"])
    assert shown["dispute"]["id"] == dispute.id and shown["dispute"]["status"] == "won"
    assert await ledger_sums_to_zero(engine)
    run_id, _ = await reconcile(temporal_client, stack_settings)  # the payable formula explains it
    assert await subjects_logged_by(engine, run_id, (parties.merchant_id, dispute.stripe_dispute_id)) == []


async def test_an_accepted_dispute_is_lost_and_the_withdrawal_stands(parties: Parties, engine: AsyncEngine) -> None:
    sale = await disputed_sale(parties, 3000)
    dispute = await dispute_of(engine, sale["id"])
    accepted = await parties.api.post(f"/disputes/{dispute.id}/accept", headers=parties.as_merchant)
    assert accepted.status_code == 200 and accepted.json()["status"] == "lost", accepted.text
    assert list(await postings(engine, dispute.id)) == [f"dispute:{dispute.id}:withdrawal"]
    assert (await balance(parties))["available"] == net(3000) - 3000 - DISPUTE_FEE
    await eventually(
        lambda: events_of(engine, dispute.id), lambda e: e == ["dispute.created", "dispute.closed"], "closed"
    )


async def test_a_lost_outcome_webhook_is_caught_up_by_the_read_back(
    parties: Parties, engine: AsyncEngine, emulator_control
) -> None:
    sale = await disputed_sale(parties, 2500)
    dispute = await dispute_of(engine, sale["id"])
    await parties.api.post(
        f"/disputes/{dispute.id}/evidence",
        json={"text": "Receipt attached.", "submit": True},
        headers=parties.as_merchant,
    )
    quiet = {"outcome": "won", "webhooks": False}  # decided at Stripe, but its webhooks never arrive
    assert emulator_control("POST", f"/disputes/{dispute.stripe_dispute_id}/close", json=quiet).status_code == 200
    await dispute_answer(parties, dispute.id, "won")
    assert f"dispute:{dispute.id}:reinstatement" in await postings(engine, dispute.id)


async def test_another_merchants_dispute_is_404_and_a_user_may_not_list(parties: Parties, engine: AsyncEngine) -> None:
    sale = await disputed_sale(parties, 1000)
    dispute = await dispute_of(engine, sale["id"])
    stranger = parties.auth("merchant", "mer_someoneelse")
    assert (await parties.api.get(f"/disputes/{dispute.id}", headers=stranger)).status_code == 404
    evidence = await parties.api.post(f"/disputes/{dispute.id}/evidence", json={"text": "x"}, headers=stranger)
    assert evidence.status_code == 404
    assert (await parties.api.post(f"/disputes/{dispute.id}/accept", headers=stranger)).status_code == 404
    assert dispute.id not in [d["id"] for d in (await parties.api.get("/disputes", headers=stranger)).json()["data"]]
    assert (await parties.api.get("/disputes", headers=parties.as_user)).status_code == 403
    operator = await parties.api.get(f"/disputes/{dispute.id}", headers=parties.auth("operator"))
    assert operator.status_code == 200 and operator.json()["tx_id"] == sale["id"]
    bad = await parties.api.post(
        f"/disputes/{dispute.id}/evidence", json={"text": "x", "submit": "yes"}, headers=parties.as_merchant
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
    await close_for_the_next_tests(parties, dispute.id)


async def close_for_the_next_tests(parties: Parties, dispute_id: str) -> None:
    """An open dispute is state an operator's generated requests (the hostile suite) could change
    under hypothesis's feet between a case and its replay: accept it."""
    accepted = await parties.api.post(f"/disputes/{dispute_id}/accept", headers=parties.as_merchant)
    assert accepted.status_code == 200 and accepted.json()["status"] == "lost", accepted.text
