"""Ledger account ids are remembered once committed, and only then (payments/activities/ledger.py)."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from payments.activities import ledger
from tests.services import fresh_key


async def _stored(engine: AsyncEngine, code: str) -> int | None:
    async with engine.connect() as conn:
        found = await conn.scalar(text("SELECT id FROM ledger_accounts WHERE code = :c"), {"c": code})
        return None if found is None else int(found)


async def test_an_account_created_by_a_posting_rolled_back_is_not_remembered(engine: AsyncEngine) -> None:
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    code = f"test_account:{fresh_key()}"
    async with sessions() as session:
        created = await ledger.account_ids(session, [code])
        assert await ledger.account_ids(session, [code]) == created  # found again in its own transaction
        await session.rollback()
    assert await _stored(engine, code) is None

    async with sessions.begin() as session:
        ids = await ledger.account_ids(session, [code])
    assert ids == {code: await _stored(engine, code)}


async def test_an_account_committed_before_is_found_and_kept(engine: AsyncEngine) -> None:
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    code = f"test_account:{fresh_key()}"
    async with sessions.begin() as session:
        first = await ledger.account_ids(session, [code])
    async with sessions.begin() as session:
        assert await ledger.account_ids(session, [code]) == first == {code: await _stored(engine, code)}
