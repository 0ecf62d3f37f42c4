"""Every list route pages through `newest_first`: rows sharing one timestamp are neither lost nor
repeated across pages, for tables keyed by a string and by a bigint."""

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import InstrumentedAttribute

from payments.api.pagination import InvalidCursor, encode_cursor, newest_first
from payments.schema.database import session_factory
from payments.schema.tables import ReconciliationLog, ReconciliationRun
from tests.services import fresh_key

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


async def _walk(
    engine: AsyncEngine,
    query: Select[Any],
    created: InstrumentedAttribute[datetime],
    key: InstrumentedAttribute[Any],
    limit: int,
) -> list[Any]:
    seen: list[Any] = []
    cursor = None
    async with session_factory(engine)() as session:
        while True:
            page, cursor = await newest_first(session, query, created, key, limit, cursor)
            assert len(page) <= limit
            seen += [getattr(row, key.key) for row in page]
            if cursor is None:
                return seen


async def test_pages_of_rows_with_one_timestamp_hold_each_row_once(engine: AsyncEngine) -> None:
    prefix = f"rr_page_{fresh_key()[:8]}_"
    runs = [
        ReconciliationRun(id=f"{prefix}{n}", window_start=AT, window_end=AT, status="finished", started_at=AT)
        for n in range(5)
    ]
    async with session_factory(engine).begin() as session:
        session.add_all(runs)
        await session.flush()
        session.add_all(
            ReconciliationLog(
                run_id=runs[0].id,
                discrepancy="page_test",
                subject=f"pi_{n}",
                resolution_status="resolved",
                created_at=AT,
            )
            for n in range(5)
        )

    mine = select(ReconciliationRun).where(ReconciliationRun.id.startswith(prefix))
    run_ids = await _walk(engine, mine, ReconciliationRun.started_at, ReconciliationRun.id, 2)
    assert run_ids == sorted((run.id for run in runs), reverse=True)

    logs = select(ReconciliationLog).where(ReconciliationLog.run_id == runs[0].id)
    log_ids = await _walk(engine, logs, ReconciliationLog.created_at, ReconciliationLog.id, 2)
    assert len(log_ids) == 5 and log_ids == sorted(set(log_ids), reverse=True)


async def test_a_string_cursor_on_a_bigint_key_is_refused(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session:
        with pytest.raises(InvalidCursor):
            cursor = encode_cursor(AT, "rr_not_a_number")
            await newest_first(
                session, select(ReconciliationLog), ReconciliationLog.created_at, ReconciliationLog.id, 2, cursor
            )


# (a delivery's attempts page the same way, behind a 404 for a delivery that is not the merchant's)
LIST_ROUTES = [
    "/transactions/{user}",
    "/merchants/{merchant}/payouts",
    "/disputes",
    "/reconciliation/runs",
    "/reconciliation/logs",
    "/merchants/{merchant}/webhook_endpoints",
    "/merchants/{merchant}/webhook_deliveries",
]
EXTREME_CURSORS = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T13:59:59.999999+14:00"]


@pytest.mark.parametrize("route", LIST_ROUTES)
async def test_a_cursor_at_the_edge_of_time_is_a_400_on_every_list_route(api: Any, auth: Any, route: str) -> None:
    operator = auth("operator")
    user = (await api.post("/users", json={"name": "Payer"}, headers=operator)).json()["id"]
    merchant = (await api.post("/merchants", json={"name": "Seller", "currency": "usd"}, headers=operator)).json()["id"]
    path = route.format(user=user, merchant=merchant)
    for created in EXTREME_CURSORS:
        for row_id in ("tx_1", "1"):
            cursor = base64.urlsafe_b64encode(json.dumps([created, row_id]).encode()).decode()
            response = await api.get(path, params={"cursor": cursor}, headers=operator)
            assert response.status_code == 400, (path, created, response.text)
            assert response.json()["error"]["code"] == "invalid_cursor"
