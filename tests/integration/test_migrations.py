import asyncio

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from payments.schema.database import asyncpg_url
from payments.schema.migrate import downgrade, upgrade
from payments.schema.tables import Base
from tests.services import scratch_database


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(asyncpg_url(url))
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


def test_migrations_upgrade_downgrade_and_upgrade_again(database_url: str) -> None:
    with scratch_database(database_url) as url:
        upgrade(url)
        assert set(Base.metadata.tables) <= asyncio.run(_tables(url))
        downgrade(url, "base")
        assert asyncio.run(_tables(url)) == {"alembic_version"}
        upgrade(url)
        assert set(Base.metadata.tables) <= asyncio.run(_tables(url))


async def _post_a_capture(url: str) -> None:
    engine = create_async_engine(asyncpg_url(url))
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO ledger_accounts (code) VALUES ('stripe_clearing'), ('merchant_payable:mer_old')")
            )
            posting = text("INSERT INTO ledger_transactions (reference) VALUES ('capture:tx_old') RETURNING id")
            tx_id = (await conn.execute(posting)).scalar_one()
            await conn.execute(
                text(
                    "INSERT INTO ledger_entries (ledger_transaction_id, account_id, amount, currency) "
                    "SELECT :t, id, CASE WHEN code = 'stripe_clearing' THEN 900 ELSE -900 END, 'usd' "
                    "FROM ledger_accounts"
                ),
                {"t": tx_id},
            )
    finally:
        await engine.dispose()


async def _kept_balances(url: str) -> list[tuple[str, int]]:
    engine = create_async_engine(asyncpg_url(url))
    try:
        async with engine.connect() as conn:
            kept = await conn.execute(
                text("SELECT a.code, b.balance FROM payable_balances b JOIN ledger_accounts a ON a.id = b.account_id")
            )
            return [(code, int(balance)) for code, balance in kept.all()]
    finally:
        await engine.dispose()


def test_the_payable_balances_migration_counts_the_entries_posted_before_it(database_url: str) -> None:
    with scratch_database(database_url) as url:
        upgrade(url, "0005")
        asyncio.run(_post_a_capture(url))
        upgrade(url)
        assert asyncio.run(_kept_balances(url)) == [("merchant_payable:mer_old", -900)]


async def _execute(url: str, *statements: str) -> list[tuple[object, ...]]:
    """The statements in one transaction; the rows of the last."""
    engine = create_async_engine(asyncpg_url(url))
    try:
        async with engine.begin() as conn:
            for statement in statements:
                result = await conn.execute(text(statement))
            return [tuple(row) for row in result.all()] if result.returns_rows else []
    finally:
        await engine.dispose()


def test_the_once_per_run_migration_keeps_the_first_of_a_runs_duplicate_logs(database_url: str) -> None:
    with scratch_database(database_url) as url:
        upgrade(url, "0014")
        asyncio.run(
            _execute(
                url,
                "INSERT INTO reconciliation_runs (id, window_start, window_end, status) "
                "VALUES ('rr_1', now(), now(), 'finished'), ('rr_2', now(), now(), 'finished')",
                "INSERT INTO reconciliation_logs (run_id, discrepancy, subject, resolution_status, details) VALUES "
                "('rr_1', 'captured_at_stripe', 'pi_1', 'auto_fixed', '{\"n\": 1}'), "
                "('rr_1', 'captured_at_stripe', 'pi_1', 'auto_fixed', '{\"n\": 2}'), "
                "('rr_2', 'captured_at_stripe', 'pi_1', 'auto_fixed', '{\"n\": 3}')",
            )
        )
        upgrade(url)
        kept = "SELECT run_id, details->>'n' FROM reconciliation_logs ORDER BY id"
        assert asyncio.run(_execute(url, kept)) == [("rr_1", "1"), ("rr_2", "3")]
