"""record_capture posts in the statement that captures: one statement once the accounts it posts to
exist, a database transaction the first time (the merchant's payable account is created then).
Both ways post the same entries, once, with the capture's event."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import ActivityEnvironment

from payments.activities.payment_records import PaymentRecords
from payments.config.keyring import Keyring
from payments.schema.database import session_factory
from payments.schema.messages import CaptureRequest, PaymentRequest, StatusChange
from payments.schema.tables import LedgerAccount, LedgerEntry, LedgerTransaction, Merchant, OutboxEvent, User
from tests.services import fresh_key


@contextmanager
def statements_run(engine: AsyncEngine) -> Iterator[list[str]]:
    """The statements sent through SQLAlchemy, and those sent on the driver's own connection
    (payments/schema/driver.py), which SQLAlchemy's events do not see: asyncpg's query logger does."""
    seen: list[str] = []
    drivers: list[Any] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    def log(query: Any) -> None:
        seen.append(query.query)

    def watch(dbapi_connection: Any, *_: Any) -> None:
        drivers.append(dbapi_connection.driver_connection)
        dbapi_connection.driver_connection.add_query_logger(log)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    event.listen(engine.sync_engine, "checkout", watch)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
        event.remove(engine.sync_engine, "checkout", watch)
        for driver in drivers:
            driver.remove_query_logger(log)


async def _authorized_payment(records: PaymentRecords, user: str, merchant: str, amount: int) -> str:
    tx_id = f"tx_{fresh_key()}"
    request = PaymentRequest(tx_id, user, merchant, amount, "usd", "pm_card_visa", fresh_key(), "f" * 64, 600)
    await ActivityEnvironment().run(records.record_payment, request)
    change = StatusChange(tx_id, "authorized", "payment.authorized", f"pi_{fresh_key()}", "visa", "4242")
    await ActivityEnvironment().run(records.record_status, change)
    return tx_id


async def _records_and_parties(
    engine: AsyncEngine, encryption_keys: str, fee_bps: int
) -> tuple[PaymentRecords, str, str]:
    sessions = session_factory(engine)
    suffix = fresh_key()[:12]
    user, merchant = f"usr_{suffix}", f"mch_{suffix}"
    async with sessions.begin() as session:
        session.add(User(id=user, name="Payer"))
        session.add(Merchant(id=merchant, name="Shop", payout_schedule="daily", fee_bps=fee_bps, currency="usd"))
    return PaymentRecords(sessions, Keyring.from_spec(encryption_keys)), user, merchant


async def _postings(engine: AsyncEngine, tx_id: str) -> dict[str, list[tuple[str, int]]]:
    """The payment's ledger transactions by kind (capture, stripe_fee), each its entries (account
    code, amount) in order, with the merchant's own id taken out of its account's code."""
    query = (
        select(LedgerTransaction.reference, LedgerAccount.code, LedgerEntry.amount)
        .join(LedgerEntry, LedgerEntry.ledger_transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerTransaction.reference.in_([f"capture:{tx_id}", f"stripe_fee:{tx_id}"]))
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    found: dict[str, list[tuple[str, int]]] = {}
    for reference, code, amount in rows:
        found.setdefault(reference.removesuffix(f":{tx_id}"), []).append((code.split(":")[0], amount))
    return {kind: sorted(entries) for kind, entries in found.items()}


async def _events(engine: AsyncEngine, tx_id: str) -> int:
    async with engine.connect() as connection:
        query = select(func.count()).where(OutboxEvent.event_key == f"{tx_id}:payment.confirmed")
        return int(await connection.scalar(query) or 0)


async def test_a_merchants_first_capture_creates_its_account_and_the_next_is_one_statement(
    engine: AsyncEngine, encryption_keys: str
) -> None:
    records, user, merchant = await _records_and_parties(engine, encryption_keys, fee_bps=290)
    first, second = [await _authorized_payment(records, user, merchant, 1999) for _ in range(2)]

    with statements_run(engine) as statements:
        view = await ActivityEnvironment().run(records.record_capture, CaptureRequest(first, "pi_1", 1999, 88))
    assert (view.status, view.amount_captured) == ("confirmed", 1999)
    assert len(statements) > 1  # the merchant's payable account did not exist: created, in a transaction

    with statements_run(engine) as statements:
        view = await ActivityEnvironment().run(records.record_capture, CaptureRequest(second, "pi_2", 1999, 88))
    assert (view.status, view.amount_captured) == ("confirmed", 1999)
    assert len(statements) == 1, statements

    expected = {
        "capture": sorted([("stripe_clearing", 1999), ("merchant_payable", -(1999 - 57)), ("platform_revenue", -57)]),
        "stripe_fee": sorted([("stripe_fees", 88), ("stripe_clearing", -88)]),
    }
    assert await _postings(engine, first) == expected
    assert await _postings(engine, second) == expected
    assert [await _events(engine, tx) for tx in (first, second)] == [1, 1]

    # A retried capture (its first commit's answer lost) posts nothing more and answers the same.
    again = await ActivityEnvironment().run(records.record_capture, CaptureRequest(second, "pi_2", 1999, 88))
    assert again == view
    assert await _postings(engine, second) == expected
    assert await _events(engine, second) == 1

    # Without Stripe's fee (not read yet), only the capture is posted, in one statement.
    third = await _authorized_payment(records, user, merchant, 1000)
    with statements_run(engine) as statements:
        await ActivityEnvironment().run(records.record_capture, CaptureRequest(third, "pi_3", 1000, None))
    assert len(statements) == 1
    assert await _postings(engine, third) == {
        "capture": sorted([("stripe_clearing", 1000), ("merchant_payable", -(1000 - 29)), ("platform_revenue", -29)])
    }


@pytest.mark.parametrize(("fee_bps", "stripe_fee"), [(0, 0), (290, None), (10_000, 88), (1, 1)])
async def test_one_statement_posts_what_the_transaction_posts(
    engine: AsyncEngine, encryption_keys: str, fee_bps: int, stripe_fee: int | None
) -> None:
    """The same capture both ways, for fee rates and Stripe fees at their edges (a platform fee of
    0 or of all of it, a Stripe fee of 0 or none): the same entries, and ledger transactions alike."""
    records, user, merchant = await _records_and_parties(engine, encryption_keys, fee_bps)
    warm_up, by_transaction, by_statement = [await _authorized_payment(records, user, merchant, 999) for _ in range(3)]
    await ActivityEnvironment().run(records.record_capture, CaptureRequest(warm_up, "pi_0", 999, 1))  # the accounts

    await records._capture_in_transaction(CaptureRequest(by_transaction, "pi_1", 999, stripe_fee))
    with statements_run(engine) as statements:
        await ActivityEnvironment().run(records.record_capture, CaptureRequest(by_statement, "pi_2", 999, stripe_fee))
    assert len(statements) == 1

    posted = await _postings(engine, by_statement)
    assert posted == await _postings(engine, by_transaction)
    assert sum(amount for entries in posted.values() for _, amount in entries) == 0
    async with engine.connect() as connection:
        references = select(func.count()).where(
            LedgerTransaction.reference.in_(
                [f"{kind}:{tx}" for kind in ("capture", "stripe_fee") for tx in (by_transaction, by_statement)]
            )
        )
        assert await connection.scalar(references) == (2 if stripe_fee is None else 4)


async def test_two_captures_at_once_post_once(engine: AsyncEngine, encryption_keys: str) -> None:
    records, user, merchant = await _records_and_parties(engine, encryption_keys, fee_bps=290)
    warm_up, tx_id = [await _authorized_payment(records, user, merchant, 500) for _ in range(2)]
    await ActivityEnvironment().run(records.record_capture, CaptureRequest(warm_up, "pi_0", 500, 5))

    capture = CaptureRequest(tx_id, "pi_1", 500, 5)
    views = await asyncio.gather(*(ActivityEnvironment().run(records.record_capture, capture) for _ in range(4)))
    assert {(view.status, view.amount_captured) for view in views} == {("confirmed", 500)}
    assert await _postings(engine, tx_id) == {
        "capture": sorted([("stripe_clearing", 500), ("merchant_payable", -(500 - 14)), ("platform_revenue", -14)]),
        "stripe_fee": sorted([("stripe_fees", 5), ("stripe_clearing", -5)]),
    }
    assert await _events(engine, tx_id) == 1
