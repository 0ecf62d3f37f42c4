"""record_payment inserts with RETURNING and reads only on a conflict: a retried activity, or a
key's second workflow, gets the key's first row, never a second one."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from payments.activities.payment_records import PaymentRecords
from payments.activities.payout_records import locked_merchant
from payments.config.keyring import Keyring
from payments.schema.database import session_factory
from payments.schema.messages import PaymentRequest
from payments.schema.tables import Merchant, Transaction, User
from tests.services import fresh_key


def _request(user: str, merchant: str, key: str) -> PaymentRequest:
    return PaymentRequest(
        tx_id=f"tx_{fresh_key()}",
        user_id=user,
        merchant_id=merchant,
        amount=1999,
        currency="usd",
        card_token="pm_card_visa",
        idempotency_key=key,
        fingerprint="f" * 64,
        authorization_expiry_seconds=600,
    )


async def _payer_and_merchant(sessions: async_sessionmaker[AsyncSession]) -> tuple[str, str]:
    suffix = fresh_key()[:12]
    user, merchant = f"usr_{suffix}", f"mch_{suffix}"
    async with sessions.begin() as session:
        session.add(User(id=user, name="Payer"))
        session.add(Merchant(id=merchant, name="Shop", payout_schedule="daily", fee_bps=290, currency="usd"))
    return user, merchant


async def test_a_repeated_key_returns_the_first_row(engine: AsyncEngine, encryption_keys: str) -> None:
    sessions = session_factory(engine)
    user, merchant = await _payer_and_merchant(sessions)
    records = PaymentRecords(sessions, Keyring.from_spec(encryption_keys))
    first_request = _request(user, merchant, "key-1")

    first = await ActivityEnvironment().run(records.record_payment, first_request)
    again = await ActivityEnvironment().run(records.record_payment, first_request)
    other_run = await ActivityEnvironment().run(records.record_payment, _request(user, merchant, "key-1"))

    assert first.tx_id == first_request.tx_id
    assert (first.status, first.amount, first.idempotency_key) == ("pending", 1999, "key-1")
    assert again == first
    assert other_run.tx_id == first.tx_id  # the key's first row, not the second run's new id
    async with sessions() as session:
        rows = await session.scalar(select(func.count()).select_from(Transaction).where(Transaction.user_id == user))
    assert rows == 1


async def test_a_payment_is_recorded_while_a_payout_holds_its_merchants_lock(
    engine: AsyncEngine, encryption_keys: str
) -> None:
    """The payout's lock on the merchant serializes payouts, not the merchant's new payments: the
    payment's foreign key to the merchant does not wait for the payout's transaction to end."""
    sessions = session_factory(engine)
    user, merchant = await _payer_and_merchant(sessions)
    records = PaymentRecords(sessions, Keyring.from_spec(encryption_keys))

    async with sessions.begin() as payout:
        await locked_merchant(payout, merchant)
        recorded = await asyncio.wait_for(
            ActivityEnvironment().run(records.record_payment, _request(user, merchant, "key-during-payout")), 10
        )
        assert recorded.status == "pending"
