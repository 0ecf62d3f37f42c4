"""record_capture posts in the statement that captures: one statement once the accounts it posts to
exist, a database transaction the first time (the merchant's payable account is created then).
Both ways post the same entries, once, with the capture's event."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)


async def _authorized_payment(records: PaymentRecords, user: str, merchant: str, amount: int) -> str:
    tx_id = f"tx_{fresh_key()}"
    request = PaymentRequest(tx_id, user, merchant, amount, "usd", "pm_card_visa", fresh_key(), "f" * 64, 600)
    await ActivityEnvironment().run(records.record_payment, request)
    change = StatusChange(tx_id, "authorized", "payment.authorized", f"pi_{fresh_key()}", "visa", "4242")
    await ActivityEnvironment().run(records.record_status, change)
    return tx_id


async def _postings(engine: AsyncEngine, tx_id: str) -> dict[str, dict[str, int]]:
    """The payment's ledger transactions by kind (capture, stripe_fee), each its entries by account
    code, with the merchant's own id taken out of its account's code."""
    query = (
        select(LedgerTransaction.reference, LedgerAccount.code, LedgerEntry.amount)
        .join(LedgerEntry, LedgerEntry.ledger_transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerTransaction.reference.in_([f"capture:{tx_id}", f"stripe_fee:{tx_id}"]))
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    found: dict[str, dict[str, int]] = {}
    for reference, code, amount in rows:
        kind = reference.removesuffix(f":{tx_id}")
        found.setdefault(kind, {})[code.split(":")[0]] = amount
    return found


async def _events(engine: AsyncEngine, tx_id: str) -> int:
    async with engine.connect() as connection:
        query = select(func.count()).where(OutboxEvent.event_key == f"{tx_id}:payment.confirmed")
        return int(await connection.scalar(query) or 0)


async def test_a_merchants_first_capture_creates_its_account_and_the_next_is_one_statement(
    engine: AsyncEngine, encryption_keys: str
) -> None:
    sessions = session_factory(engine)
    suffix = fresh_key()[:12]
    user, merchant = f"usr_{suffix}", f"mch_{suffix}"
    async with sessions.begin() as session:
        session.add(User(id=user, name="Payer"))
        session.add(Merchant(id=merchant, name="Shop", payout_schedule="daily", fee_bps=290, currency="usd"))
    records = PaymentRecords(sessions, Keyring.from_spec(encryption_keys))
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
        "capture": {"stripe_clearing": 1999, "merchant_payable": -(1999 - 57), "platform_revenue": -57},
        "stripe_fee": {"stripe_fees": 88, "stripe_clearing": -88},
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
        "capture": {"stripe_clearing": 1000, "merchant_payable": -(1000 - 29), "platform_revenue": -29}
    }
