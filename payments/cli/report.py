"""`payments report --month 2026-11`: the platform's month-end report (payments/schema/statements.py),
as CSV on stdout, straight from PostgreSQL (the same figures as `GET /reports/month-end`)."""

from __future__ import annotations

import csv
import sys

from payments.config.settings import Settings
from payments.schema.database import create_engine, session_factory
from payments.schema.statements import REPORT_FIELDS, month_end


async def month_end_report(settings: Settings, month: str) -> int:
    assert settings.database_url, "the CLI falls back to the local stack's"
    engine = create_engine(settings.database_url, 1)
    try:
        async with session_factory(engine)() as session:
            figures = await month_end(session, month)
    finally:
        await engine.dispose()
    writer = csv.DictWriter(sys.stdout, REPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(figures)
    return 0
