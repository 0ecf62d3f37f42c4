"""A reconciliation run's row: its window, and the watermark a scheduled run starts from (where
the last finished scheduled run ended), so no window is ever skipped."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from payments.schema.messages import ReconciliationPage, ReconciliationTotals
from payments.schema.tables import ReconciliationRun, ReconciliationSeen


class ReconciliationRuns:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn
    async def open_run(self, page: ReconciliationPage) -> None:
        """A run over the window it was given (on demand)."""
        async with self._sessions.begin() as session:
            await self._insert_run(session, page, datetime.fromisoformat(page.window_start), from_watermark=False)

    @activity.defn
    async def open_run_from_watermark(self, page: ReconciliationPage) -> str:
        """A scheduled run starts where the last finished scheduled run ended, however long ago (a
        missed or skipped run leaves no gap); the first one ever at `page.window_start`. Returns
        the window's start; a retried activity gets the one it stored."""
        async with self._sessions.begin() as session:
            stored = await session.get(ReconciliationRun, page.run_id)
            if stored is None:
                watermark = await session.scalar(
                    select(func.max(ReconciliationRun.window_end)).where(
                        ReconciliationRun.from_watermark, ReconciliationRun.status == "finished"
                    )
                )
                end = datetime.fromisoformat(page.window_end)
                start = min(watermark, end) if watermark else datetime.fromisoformat(page.window_start)
                await self._insert_run(session, page, start, from_watermark=True)
                stored = await session.get(ReconciliationRun, page.run_id)
            assert stored is not None
            return stored.window_start.isoformat()

    @staticmethod
    async def _insert_run(
        session: AsyncSession, page: ReconciliationPage, start: datetime, from_watermark: bool
    ) -> None:
        await session.execute(
            insert(ReconciliationRun)
            .values(
                id=page.run_id,
                window_start=start,
                window_end=datetime.fromisoformat(page.window_end),
                status="running",
                from_watermark=from_watermark,
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )

    @activity.defn
    async def close_run(self, totals: ReconciliationTotals) -> None:
        """The counts stay on the run; the scratch rows go."""
        async with self._sessions.begin() as session:
            run = await session.get(ReconciliationRun, totals.run_id, with_for_update=True)
            assert run is not None
            run.status, run.counts, run.finished_at = "finished", totals.counts, datetime.now(UTC)
            await session.execute(delete(ReconciliationSeen).where(ReconciliationSeen.run_id == run.id))
