"""A payment's row, read on the driver's connection (payments/schema/driver.py): by its id (the
API's confirm, cancel and reads) and by its key (init's repeat check, record_payment's conflict)."""

from __future__ import annotations

from typing import Any, TypeAlias, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payments.schema.driver import Statement, fetch_row
from payments.schema.tables import Transaction

TRANSACTIONS = cast(Table, Transaction.__table__)
# A row of the table as these reads give it: Transaction's columns as attributes, read-only (a
# namedtuple, driver.Statement.row), not an ORM object.
PaymentRow: TypeAlias = Any
_BY_ID = Statement.of(select(TRANSACTIONS).where(TRANSACTIONS.c.id == bindparam("tx_id")))
_BY_KEY = Statement.of(
    select(TRANSACTIONS).where(
        TRANSACTIONS.c.user_id == bindparam("user_id"),
        TRANSACTIONS.c.idempotency_key == bindparam("idempotency_key"),
    )
)


async def payment_by_id(sessions: async_sessionmaker[AsyncSession], tx_id: str) -> PaymentRow | None:
    return await fetch_row(sessions, _BY_ID, {"tx_id": tx_id})


async def payment_by_key(sessions: async_sessionmaker[AsyncSession], user_id: str, key: str) -> PaymentRow | None:
    return await fetch_row(sessions, _BY_KEY, {"user_id": user_id, "idempotency_key": key})
