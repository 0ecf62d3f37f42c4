"""Disputes on the real stack: a disputed card's capture opens a dispute at the emulator, its
webhook starts DisputeWorkflow, and the merchant's balance, the ledger and the events follow
Stripe's outcome. Invariant throughout: the ledger balances, each posting happens once."""

from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from schema.tables import Dispute, OutboxEvent
from tests.integration.payments.conftest import Parties
from tests.integration.payments.test_payouts import balance, ledger_sums_to_zero, net
from tests.services import eventually

DISPUTE_FEE = 1500  # the setting's default, Stripe's fee


async def disputed_sale(parties: Parties, amount: int) -> dict[str, Any]:
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
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT t.reference, a.code, e.amount FROM ledger_entries e "
                "JOIN ledger_transactions t ON t.id = e.ledger_transaction_id "
                "JOIN ledger_accounts a ON a.id = e.account_id WHERE t.reference LIKE :ref ORDER BY e.id"
            ),
            {"ref": f"dispute:{dispute_id}:%"},
        )
        found: dict[str, dict[str, int]] = {}
        for reference, code, amount in rows:
            found.setdefault(reference, {})[code] = amount
        return found


async def events_of(engine: AsyncEngine, dispute_id: str) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(OutboxEvent.type).where(OutboxEvent.aggregate_id == dispute_id).order_by(OutboxEvent.id)
        )
        return list(rows.scalars())


async def test_a_dispute_withdraws_amount_and_fee_from_the_merchant(parties: Parties, engine: AsyncEngine) -> None:
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
