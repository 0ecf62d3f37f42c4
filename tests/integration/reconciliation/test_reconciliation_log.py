"""The reconciliation log on the real database: a run logs a discrepancy once per subject, however
many of its slices (or retried pages) follow the same fix at once."""

import asyncio
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from payments.activities.reconciliation_log import Logbook
from payments.schema.database import session_factory
from tests.integration.reconciliation.test_reconciliation import logs_about
from tests.services import fresh_key


async def _run(engine: AsyncEngine) -> str:
    run_id = f"rr_{fresh_key()[:24]}"
    async with engine.begin() as conn:
        now = datetime.now(UTC)
        await conn.execute(
            text(
                "INSERT INTO reconciliation_runs (id, window_start, window_end, status) VALUES (:id, :s, :e, 'running')"
            ),
            {"id": run_id, "s": now, "e": now},
        )
    return run_id


async def _announced(engine: AsyncEngine, subject: str) -> int:
    async with engine.connect() as conn:
        query = text("SELECT count(*) FROM outbox_events WHERE aggregate_id = :s")
        return int((await conn.execute(query, {"s": subject})).scalar_one())


async def test_a_fix_followed_twice_at_once_in_one_run_is_logged_once(engine: AsyncEngine) -> None:
    """Two slices of one run each read a payment back and follow its capture: one row, one event."""
    logbook, counts = Logbook(session_factory(engine)), Counter[str]()
    run_id, subject = await _run(engine), f"pi_{fresh_key()[:24]}"
    details = {"was": "authorized", "captured": 1300}

    await asyncio.gather(
        *(logbook.log(run_id, counts, "captured_at_stripe", subject, details, fixed=True) for _ in range(4))
    )

    assert await logs_about(engine, subject) == [("captured_at_stripe", "auto_fixed")]
    assert counts == Counter(auto_fixed=1)
    assert await _announced(engine, subject) == 1


async def test_a_later_run_logs_a_fix_again(engine: AsyncEngine) -> None:
    """Once per run, not once ever: the same fix needed again later is news again."""
    logbook, counts = Logbook(session_factory(engine)), Counter[str]()
    subject = f"pi_{fresh_key()[:24]}"
    for run_id in (await _run(engine), await _run(engine)):
        await logbook.log(run_id, counts, "closed_but_authorized_at_stripe", subject, {}, fixed=True)

    assert await logs_about(engine, subject) == [("closed_but_authorized_at_stripe", "auto_fixed")] * 2
    assert counts == Counter(auto_fixed=2)
