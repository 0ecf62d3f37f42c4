"""A run's seen set starts empty, as its statistics say, and grows by the window. Each page asks
it about its objects with one prepared statement: on reconciliation's connections that statement
is planned for the table as it is, not from a plan PostgreSQL cached while it was small."""

import asyncio

from sqlalchemy import text

from payments.activities.reconciliation import _SEEN
from payments.schema.database import create_engine
from payments.schema.migrate import upgrade
from tests.services import scratch_database

RUN = "rr_plans"


async def _plan_after_growth(url: str, custom_plans: bool) -> str:
    """The plan of the seen-set lookup, prepared and run six times on the empty table (PostgreSQL
    may keep a generic plan from then on), asked again once the run has seen 100,000 objects."""
    engine = create_engine(url, 1, custom_plans=custom_plans)
    lookup = _SEEN.sql  # as reconciliation sends it: $1 the run, $2 the ids, $3 the slice
    args = f"'{RUN}', ARRAY['pi_1', 'pi_2'], 0"
    try:
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE reconciliation_seen"))  # empty, as a run finds it
            await conn.exec_driver_sql(f"PREPARE seen(text, text[], smallint) AS {lookup}")
            for _ in range(6):
                await conn.exec_driver_sql(f"EXECUTE seen({args})")
            await conn.execute(
                text(
                    "INSERT INTO reconciliation_seen (run_id, stripe_id) "
                    "SELECT :run, 'pi_' || n FROM generate_series(1, 100000) n"
                ),
                {"run": RUN},
            )
            return "\n".join(row[0] for row in await conn.exec_driver_sql(f"EXPLAIN EXECUTE seen({args})"))
    finally:
        await engine.dispose()


def test_reconciliations_lookups_are_planned_for_the_seen_set_as_it_is(database_url: str) -> None:
    with scratch_database(database_url) as url:
        upgrade(url)
        cached = asyncio.run(_plan_after_growth(url, custom_plans=False))
        fresh = asyncio.run(_plan_after_growth(url, custom_plans=True))
    assert "Seq Scan" in cached  # the trap: a plan kept from the empty table
    assert "Seq Scan" not in fresh and "reconciliation_seen_pkey" in fresh
