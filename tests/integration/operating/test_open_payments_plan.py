"""The open-payments watch asks, every 15 s in each worker, for the oldest payment of each status
not yet final. Its statement is prepared (asyncpg) and, after five runs, PostgreSQL may plan it
once for any value: that plan must still descend the partial index of open payments. With the
status bound, it walked every payment's `transactions_created` entry instead (0.57 s a call at
400,000 payments). Shown on a scratch database holding what production holds: many payments,
nearly all final, the open ones the newest."""

import asyncio

from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql

from payments.schema.database import create_engine
from payments.schema.migrate import upgrade
from payments.schema.tables import OPEN_PAYMENT_STATUSES
from payments.workers.open_payments import oldest_open_payments
from tests.services import scratch_database

PAYMENTS = 50_000
OPEN = 40  # the newest, spread over the open statuses
BOUND = "SELECT min(created_at) FROM transactions WHERE status = $1"

_PAYMENTS = text(
    """
    INSERT INTO transactions (id, user_id, merchant_id, amount, amount_captured, currency, status,
        idempotency_key, request_fingerprint, card_token, card_token_key_id, workflow_id, created_at, updated_at)
    SELECT 'tx_' || n, 'usr_plan', 'mer_plan', 100, CASE WHEN open THEN 0 ELSE 100 END, 'usd',
        CASE WHEN open THEN (CAST(:open_statuses AS text[]))[n % 4 + 1] ELSE 'confirmed' END,
        'key_' || n, 'fingerprint', '\\x00', 'key_1', 'wf_' || n,
        now() - make_interval(secs => :payments - n), now()
    FROM generate_series(1, :payments) n, LATERAL (SELECT n > :payments - :open AS open) o
    """
)


async def _generic_plans(url: str) -> tuple[str, str]:
    """EXPLAIN of the watch's statement, and of the same lookup with the status bound, both under
    `force_generic_plan` (the plan PostgreSQL may keep for a prepared statement)."""
    watch = select(*oldest_open_payments())
    sql = str(watch.compile(dialect=postgresql.dialect(), compile_kwargs={"render_postcompile": True}))
    engine = create_engine(url, 1)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("INSERT INTO users (id, name) VALUES ('usr_plan', 'Plan')"))
            await conn.execute(
                text(
                    "INSERT INTO merchants (id, name, payout_schedule, fee_bps, currency) "
                    "VALUES ('mer_plan', 'Plan', 'daily', 0, 'usd')"
                )
            )
            await conn.execute(_PAYMENTS, {"payments": PAYMENTS, "open": OPEN, "open_statuses": OPEN_PAYMENT_STATUSES})
            await conn.execute(text("ANALYZE transactions"))
            await conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
            await conn.exec_driver_sql(f"PREPARE watch AS {sql}")
            await conn.exec_driver_sql(f"PREPARE bound(text) AS {BOUND}")
            watched = await conn.exec_driver_sql("EXPLAIN EXECUTE watch")
            bound = await conn.exec_driver_sql("EXPLAIN EXECUTE bound('authorized')")
            return "\n".join(row[0] for row in watched), "\n".join(row[0] for row in bound)
    finally:
        await engine.dispose()


def test_the_oldest_open_payment_is_found_in_the_partial_index_by_a_generic_plan(database_url: str) -> None:
    with scratch_database(database_url) as url:
        upgrade(url)
        watched, bound = asyncio.run(_generic_plans(url))
    assert "transactions_created" in bound  # the trap: a bound status walks every payment
    assert watched.count("using transactions_open_created") == len(OPEN_PAYMENT_STATUSES), watched
    for status in OPEN_PAYMENT_STATUSES:
        assert f"Index Cond: (status = '{status}'::text)" in watched, watched
    assert "transactions_created" not in watched.replace("transactions_open_created", ""), watched
