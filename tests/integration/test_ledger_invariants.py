"""The ledger's invariants hold in PostgreSQL itself: we try to break them and the database refuses."""

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tests.services import fresh_key


async def _account(conn: AsyncConnection, code: str) -> int:
    result = await conn.execute(
        text("INSERT INTO ledger_accounts (code) VALUES (:c) RETURNING id"), {"c": f"{code}:{fresh_key()}"}
    )
    return int(result.scalar_one())


async def _post(conn: AsyncConnection, entries: list[tuple[int, int, str]]) -> int:
    tx = await conn.execute(
        text("INSERT INTO ledger_transactions (reference) VALUES (:r) RETURNING id"),
        {"r": f"test:{fresh_key()}"},
    )
    tx_id = int(tx.scalar_one())
    await _insert_entries(conn, tx_id, entries)
    return tx_id


async def _insert_entries(conn: AsyncConnection, tx_id: int, entries: list[tuple[int, int, str]]) -> None:
    """All of `entries` in one INSERT statement."""
    await conn.execute(
        text(
            "INSERT INTO ledger_entries (ledger_transaction_id, account_id, amount, currency) "
            "SELECT :t, * FROM unnest(CAST(:a AS bigint[]), CAST(:m AS bigint[]), CAST(:c AS text[]))"
        ),
        {"t": tx_id, "a": [e[0] for e in entries], "m": [e[1] for e in entries], "c": [e[2] for e in entries]},
    )


async def _balanced_transaction(engine: AsyncEngine) -> int:
    async with engine.begin() as conn:
        clearing, payable = await _account(conn, "stripe_clearing"), await _account(conn, "merchant_payable")
        return await _post(conn, [(clearing, 1000, "usd"), (payable, -1000, "usd")])


async def test_a_balanced_transaction_commits(engine: AsyncEngine) -> None:
    tx_id = await _balanced_transaction(engine)
    async with engine.connect() as conn:
        total = await conn.execute(
            text("SELECT sum(amount), count(*) FROM ledger_entries WHERE ledger_transaction_id = :t"), {"t": tx_id}
        )
        assert tuple(total.one()) == (0, 2)


@pytest.mark.parametrize(
    "entries",
    [
        [(0, 1000, "usd"), (1, -999, "usd")],  # off by one
        [(0, 1000, "usd")],  # one-legged
        [(0, 1000, "usd"), (1, -1000, "eur")],  # sums to zero only if currencies are mixed
    ],
)
async def test_an_unbalanced_transaction_is_refused(engine: AsyncEngine, entries: list[tuple[int, int, str]]) -> None:
    reference_count = "SELECT count(*) FROM ledger_transactions"
    async with engine.connect() as conn:
        before = (await conn.execute(text(reference_count))).scalar_one()
    with pytest.raises(DBAPIError, match="does not sum to zero"):
        async with engine.begin() as conn:
            accounts = [await _account(conn, "a"), await _account(conn, "b")]
            await _post(conn, [(accounts[i], amount, cur) for i, amount, cur in entries])
    async with engine.connect() as conn:
        assert (await conn.execute(text(reference_count))).scalar_one() == before  # nothing half-written


async def test_a_posting_balances_within_its_statement(engine: AsyncEngine) -> None:
    """Half a posting is refused at its INSERT, even though the other half would follow in the same
    transaction: the check runs once per statement, over the rows it inserted."""
    async with engine.begin() as conn:
        clearing, payable = await _account(conn, "stripe_clearing"), await _account(conn, "merchant_payable")
    with pytest.raises(DBAPIError, match="does not sum to zero"):
        async with engine.begin() as conn:
            tx_id = await _post(conn, [(clearing, 1000, "usd")])
            await _insert_entries(conn, tx_id, [(payable, -1000, "usd")])


async def test_entries_added_later_to_a_balanced_posting_are_refused(engine: AsyncEngine) -> None:
    tx_id = await _balanced_transaction(engine)
    async with engine.begin() as conn:
        extra = await _account(conn, "extra")
    with pytest.raises(DBAPIError, match="does not sum to zero"):
        async with engine.begin() as conn:
            await _insert_entries(conn, tx_id, [(extra, 5, "usd")])


async def test_one_statement_of_many_postings_is_checked_posting_by_posting(engine: AsyncEngine) -> None:
    """Two postings in one INSERT whose sum is zero only together: refused, nothing kept."""
    async with engine.begin() as conn:
        clearing, payable = await _account(conn, "stripe_clearing"), await _account(conn, "merchant_payable")
        first = await _post(conn, [(clearing, 300, "usd"), (payable, -300, "usd")])
        second = await _post(conn, [(clearing, 200, "usd"), (payable, -200, "usd")])
    with pytest.raises(DBAPIError, match="does not sum to zero"):
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO ledger_entries (ledger_transaction_id, account_id, amount, currency) "
                    "VALUES (:f, :c, 50, 'usd'), (:s, :p, -50, 'usd')"
                ),
                {"f": first, "s": second, "c": clearing, "p": payable},
            )
    async with engine.connect() as conn:
        assert await _kept_balance(conn, payable) == -500


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entries SET amount = amount * 2 WHERE ledger_transaction_id = :t",
        "DELETE FROM ledger_entries WHERE ledger_transaction_id = :t",
        "UPDATE ledger_transactions SET reference = 'rewritten' WHERE id = :t",
        "DELETE FROM ledger_transactions WHERE id = :t",
    ],
)
async def test_ledger_rows_cannot_be_updated_or_deleted(engine: AsyncEngine, statement: str) -> None:
    tx_id = await _balanced_transaction(engine)
    with pytest.raises(DBAPIError, match="ledger rows are immutable"):
        async with engine.begin() as conn:
            await conn.execute(text(statement), {"t": tx_id})
    async with engine.connect() as conn:
        amounts = await conn.execute(
            text("SELECT amount FROM ledger_entries WHERE ledger_transaction_id = :t ORDER BY amount"), {"t": tx_id}
        )
        assert amounts.scalars().all() == [-1000, 1000]


async def test_the_ledger_cannot_be_truncated(engine: AsyncEngine) -> None:
    await _balanced_transaction(engine)
    with pytest.raises(DBAPIError, match="ledger rows are immutable"):
        async with engine.begin() as conn:
            await conn.execute(text("TRUNCATE ledger_entries"))


async def test_posting_the_same_reference_twice_is_refused(engine: AsyncEngine) -> None:
    reference = f"capture:{fresh_key()}"
    insert = text("INSERT INTO ledger_transactions (reference) VALUES (:r)")
    async with engine.begin() as conn:
        await conn.execute(insert, {"r": reference})
    with pytest.raises(DBAPIError, match="duplicate key"):
        async with engine.begin() as conn:
            await conn.execute(insert, {"r": reference})


async def _kept_balance(conn: AsyncConnection, account_id: int) -> int | None:
    kept = await conn.execute(text("SELECT balance FROM payable_balances WHERE account_id = :a"), {"a": account_id})
    return kept.scalar_one_or_none()


async def test_a_merchant_payable_keeps_its_balance_and_shared_accounts_keep_none(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        clearing, payable = await _account(conn, "stripe_clearing"), await _account(conn, "merchant_payable")
        await _post(conn, [(clearing, 1000, "usd"), (payable, -1000, "usd")])
        await _post(conn, [(payable, 250, "usd"), (clearing, -250, "usd")])
    async with engine.connect() as conn:
        assert await _kept_balance(conn, payable) == -750
        assert await _kept_balance(conn, clearing) is None  # a shared account: no hot row


async def test_a_refused_posting_leaves_the_kept_balance_as_it_was(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        clearing, payable = await _account(conn, "stripe_clearing"), await _account(conn, "merchant_payable")
        await _post(conn, [(clearing, 1000, "usd"), (payable, -1000, "usd")])
    with pytest.raises(DBAPIError, match="does not sum to zero"):
        async with engine.begin() as conn:
            await _post(conn, [(clearing, 500, "usd"), (payable, -499, "usd")])
    async with engine.connect() as conn:
        assert await _kept_balance(conn, payable) == -1000


async def test_concurrent_postings_to_one_merchant_all_count(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        clearing, payable = await _account(conn, "stripe_clearing"), await _account(conn, "merchant_payable")

    async def capture(amount: int) -> None:
        async with engine.begin() as conn:
            await _post(conn, [(clearing, amount, "usd"), (payable, -amount, "usd")])

    await asyncio.gather(*(capture(amount) for amount in range(1, 41)))
    async with engine.connect() as conn:
        assert await _kept_balance(conn, payable) == -sum(range(1, 41))
        summed = text("SELECT sum(amount) FROM ledger_entries WHERE account_id = :a")
        entries = await conn.execute(summed, {"a": payable})
        assert entries.scalar_one() == -sum(range(1, 41))
