"""The reconciliation log: each discrepancy once per subject while it is open, and once per run,
with its outbox event and its metric."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payments.activities import metrics
from payments.activities.outbox import add_event
from payments.schema.tables import ReconciliationLog


class Logbook:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def log(
        self,
        run_id: str,
        counts: Counter[str],
        discrepancy: str,
        subject: str,
        details: dict[str, Any],
        fixed: bool = False,
        **ids: str,
    ) -> None:
        status = "auto_fixed" if fixed else "needs_review"
        async with self._sessions.begin() as session:
            created = await session.execute(
                insert(ReconciliationLog)
                .values(
                    run_id=run_id,
                    discrepancy=discrepancy,
                    subject=subject,
                    details=details,
                    resolution_status=status,
                    **ids,
                )
                .on_conflict_do_nothing()  # open from an earlier run, or logged already in this one
                .returning(ReconciliationLog.id)
            )
            log_id = created.scalar_one_or_none()
            if log_id is None:
                return  # nothing new
            await add_event(
                session,
                "reconciliation.discrepancy",
                subject,
                {"log_id": log_id, "run_id": run_id, "discrepancy": discrepancy, "status": status, **ids, **details},
                occurrence=f"{discrepancy}:{run_id}",  # once per run; a later run may find it again
            )
        counts[status] += 1
        metrics.DISCREPANCIES.labels(discrepancy, status).inc()
