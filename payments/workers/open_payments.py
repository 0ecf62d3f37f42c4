"""No payment left in an unknown state without anyone seeing it: every few seconds the worker
measures the age of the oldest payment of each status that is not final, and how many payments
reconciliation found disagreeing with Stripe and left for review (payments/activities/metrics.py). Each is a
small index-backed query (a min() per status, a count of the open review rows), whatever the volume."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import ScalarSelect, func, literal, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payments.activities.metrics import AUTHORIZATION_EXPIRY, OPEN_PAYMENT_AGE, STRIPE_DISAGREEMENTS
from payments.schema.tables import OPEN_PAYMENT_STATUSES, ReconciliationLog, Transaction
from payments.workers.polling import poll_until_stopped


def oldest_open_payments() -> list[ScalarSelect[Any]]:
    """The oldest payment's creation time, per open status. Each status is written into the SQL,
    not bound: the partial index `transactions_open_created` covers only the open statuses, and a
    prepared statement's generic plan (PostgreSQL's after five runs) cannot use a partial index for
    a bound value. It walked the whole `transactions_created` index instead: 0.57 s of PostgreSQL
    every 15 s at 400,000 payments, growing with the table."""
    return [
        select(func.min(Transaction.created_at))
        .where(Transaction.status == literal(status, literal_execute=True))
        .scalar_subquery()
        for status in OPEN_PAYMENT_STATUSES
    ]


class OpenPaymentsWatch:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        authorization_expiry: timedelta,
        interval_seconds: float = 15.0,
    ) -> None:
        self._sessions = sessions
        self._interval_seconds = interval_seconds
        self._classes_seen: set[str] = set()
        AUTHORIZATION_EXPIRY.set(authorization_expiry.total_seconds())

    async def measure(self) -> int:
        """Set the gauges once; 0: there is never a backlog to hurry through."""
        oldest = oldest_open_payments()
        under_review = (
            select(ReconciliationLog.discrepancy, func.count())
            .where(
                ReconciliationLog.resolution_status == "needs_review",
                or_(ReconciliationLog.tx_id.is_not(None), ReconciliationLog.refund_id.is_not(None)),
            )
            .group_by(ReconciliationLog.discrepancy)
        )
        async with self._sessions() as session:
            now, *since = (await session.execute(select(func.now(), *oldest))).one()  # the database's clock
            counts = {discrepancy: count for discrepancy, count in (await session.execute(under_review)).all()}
        for status, created_at in zip(OPEN_PAYMENT_STATUSES, since, strict=True):
            OPEN_PAYMENT_AGE.labels(status).set((now - created_at).total_seconds() if created_at else 0)
        # A class whose rows were all resolved reads 0 rather than vanishing (an alert sees it clear).
        for discrepancy in self._classes_seen | set(counts):
            STRIPE_DISAGREEMENTS.labels(discrepancy).set(counts.get(discrepancy, 0))
        self._classes_seen |= set(counts)
        return 0

    async def run(self, stop: asyncio.Event) -> None:
        await poll_until_stopped(
            self.measure, stop, self._interval_seconds, (SQLAlchemyError, OSError), "open_payments_watch"
        )
