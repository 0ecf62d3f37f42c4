"""The invariants a chaos run must keep: the money checks of any stack (devstack/money_checks.py),
and what the workload expected (devstack/workload.py): each payment's end state, each payout's, and
every HTTP answer."""

from __future__ import annotations

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from devstack.money_checks import (
    Check,
    StripeState,
    all_rows,
    events,
    ledger,
    payment_intents,
    refunds,
)
from devstack.workload import Plan, Tally, end_states, http, transfers
from payments.schema.tables import Payout, Transaction


async def run_checks(session: AsyncSession, redis: Redis, stripe: StripeState, plan: Plan, tally: Tally) -> list[Check]:
    txs = {tx.id: tx for tx in await all_rows(session, Transaction)}
    payouts = await all_rows(session, Payout)
    return [
        end_states(plan, tally, txs),
        payment_intents(txs, stripe),
        refunds(txs, stripe),
        transfers(payouts, tally, stripe),
        await ledger(session, txs, payouts),
        await events(session, redis, txs, payouts),
        http(tally),
    ]
