"""One state change, one outbox row: a local write retried after its commit (ack lost) must not
announce the transition a second time under another event id."""

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from payments.activities.payment_records import PaymentRecords
from payments.config.keyring import Keyring
from payments.schema.database import session_factory
from payments.schema.messages import StatusChange
from payments.schema.tables import OutboxEvent
from tests.integration.conftest import Parties
from tests.services import fresh_key


async def _events(engine: AsyncEngine, aggregate_id: str, event_type: str) -> int:
    async with engine.connect() as conn:
        query = select(func.count()).where(OutboxEvent.aggregate_id == aggregate_id, OutboxEvent.type == event_type)
        return (await conn.execute(query)).scalar_one()


async def test_a_status_change_written_twice_adds_one_outbox_row(
    parties: Parties, engine: AsyncEngine, encryption_keys: str
) -> None:
    tx = await parties.authorized(1000)
    records = PaymentRecords(session_factory(engine), Keyring.from_spec(encryption_keys))
    change = StatusChange(tx["id"], "canceled", "payment.canceled", failure_code="authorization_expired")
    await records.record_status(change)
    await records.record_status(change)  # the local activity's retry after a commit whose ack was lost
    assert await _events(engine, tx["id"], "payment.canceled") == 1


async def test_the_database_refuses_a_second_row_for_one_transition(engine: AsyncEngine) -> None:
    subject = f"po_{fresh_key()}"
    sessions = session_factory(engine)

    def row() -> OutboxEvent:
        return OutboxEvent(type="payout.paid", aggregate_id=subject, event_key=f"{subject}:paid", payload={})

    async with sessions.begin() as session:
        session.add(row())
    with pytest.raises(IntegrityError):
        async with sessions.begin() as session:
            session.add(row())
    assert await _events(engine, subject, "payout.paid") == 1
