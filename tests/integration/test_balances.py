"""What a merchant may be paid (its kept balance less the captures still in the hold) and how much of
its deficit has lasted: read from the kept balance and the window of entries, not the history."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from payments.schema import balances
from payments.schema.database import session_factory
from payments.schema.tables import Merchant
from tests.services import fresh_key

DAY = timedelta(days=1)


async def _merchant_with(engine: AsyncEngine, postings: list[tuple[str, int, timedelta]]) -> str:
    """A merchant and its postings: (reference prefix, amount to the merchant, age), each balanced
    against Stripe clearing and dated `age` ago."""
    merchant = f"mch_{fresh_key()[:12]}"
    sessions = session_factory(engine)
    async with sessions.begin() as session:
        session.add(Merchant(id=merchant, name="Shop", payout_schedule="daily", fee_bps=0, currency="usd"))
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO ledger_accounts (code) VALUES (:p), ('stripe_clearing') ON CONFLICT (code) DO NOTHING"),
            {"p": balances.merchant_payable(merchant)},
        )
        for prefix, amount, age in postings:
            posted = await conn.execute(
                text("INSERT INTO ledger_transactions (reference) VALUES (:r) RETURNING id"),
                {"r": f"{prefix}:{fresh_key()}"},
            )
            await conn.execute(
                text(
                    "INSERT INTO ledger_entries (ledger_transaction_id, account_id, amount, currency, created_at) "
                    "SELECT :t, id, CAST(:a AS bigint) * CASE WHEN code = 'stripe_clearing' THEN 1 ELSE -1 END,"
                    " 'usd', now() - CAST(:age AS interval) FROM ledger_accounts WHERE code IN ('stripe_clearing', :p)"
                ),
                {"t": posted.scalar_one(), "a": amount, "age": age, "p": balances.merchant_payable(merchant)},
            )
    return merchant


async def _available(engine: AsyncEngine, merchant: str, hold: timedelta) -> int:
    async with session_factory(engine)() as session:
        return await balances.available(session, merchant, "usd", hold)


async def _payable(engine: AsyncEngine, merchants: list[str], hold: timedelta) -> list[str]:
    async with session_factory(engine)() as session:
        page = await session.scalars(balances.payable_merchants("daily", None, 1_000_000, hold))
        return sorted(set(page) & set(merchants))


async def test_captures_younger_than_the_hold_are_not_available_and_debits_always_count(engine: AsyncEngine) -> None:
    merchant = await _merchant_with(
        engine, [("capture", 1000, 2 * DAY), ("capture", 500, timedelta(0)), ("refund", -100, timedelta(0))]
    )
    assert await _available(engine, merchant, timedelta(0)) == 1400
    assert await _available(engine, merchant, DAY) == 900  # the fresh capture is held; the refund is not


async def test_the_payout_run_pages_only_merchants_with_something_past_the_hold(engine: AsyncEngine) -> None:
    seasoned = await _merchant_with(engine, [("capture", 1000, 2 * DAY)])
    fresh = await _merchant_with(engine, [("capture", 1000, timedelta(0))])
    owing = await _merchant_with(engine, [("capture", 1000, 2 * DAY), ("refund", -1500, timedelta(0))])
    assert await _payable(engine, [seasoned, fresh, owing], DAY) == [seasoned]
    assert await _payable(engine, [seasoned, fresh, owing], timedelta(0)) == sorted([seasoned, fresh])


async def _lasting(engine: AsyncEngine, merchant: str, age: timedelta) -> int:
    async with session_factory(engine)() as session:
        return await balances.lasting_deficit(session, merchant, "usd", age)


async def test_a_deficit_counts_as_lasting_only_for_what_was_owed_throughout_the_age(engine: AsyncEngine) -> None:
    # owed over time: 1000 captured (10 days ago), paid out (9), refunded 600 (8), 200 captured (1)
    history = [
        ("capture", 1000, 10 * DAY),
        ("payout", -1000, 9 * DAY),
        ("refund", -600, 8 * DAY),
        ("capture", 200, DAY),
    ]
    owing = await _merchant_with(engine, history)
    assert await _lasting(engine, owing, 7 * DAY) == 400  # owed 600 at the cutoff, 400 at the least since
    assert await _lasting(engine, owing, timedelta(0)) == 400  # owed now
    assert await _lasting(engine, owing, 30 * DAY) == 0  # owed nothing 30 days ago

    repaid_for_a_while = await _merchant_with(engine, [*history, ("capture", 700, 2 * DAY), ("refund", -700, DAY)])
    assert await _lasting(engine, repaid_for_a_while, 7 * DAY) == 0  # in credit 2 days ago: not lasting
