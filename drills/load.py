"""The payment load a drill loses its store under: devstack/workload.py's seeded payments, refunds
and payouts through the HTTP API, the loss fired once a share of them has started; then the money
checks (one PaymentIntent and at most one capture per payment, refunds and transfers as Stripe has
them, a balanced ledger whose payables match captures, fees, refunds and payouts, each outbox
event in the stream once)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from devstack.money_checks import Check, all_rows, events, ledger, payment_intents, refunds, stripe_state
from devstack.throwaway import Stack
from devstack.workload import Plan, Tally, drive, transfers
from payments.schema.tables import Payout, Transaction

CONCURRENCY = 6  # clients at once


async def run_load(stack: Stack, plan: Plan, tally: Tally, at: float, loss: Callable[[], Awaitable[None]]) -> None:
    """Run the whole workload; call `loss` once `at` (a share) of its payments have started."""

    async def lose_when_due() -> None:
        while tally.started < at * len(plan.payments):  # noqa: ASYNC110 (the workload counts; nothing signals)
            await asyncio.sleep(0.05)
        await loss()

    await drive(stack, plan, tally, CONCURRENCY, lose_when_due())


def freeze(stack: Stack, role: str) -> None:
    """SIGSTOP the stack's `role` process: it holds its connections and answers nothing."""
    server = stack.process(role)
    if server is None:
        raise RuntimeError(f"the stack has no {role} process")
    server.suspend()


async def money_checks(session: AsyncSession, redis: Redis, stack: Stack, tally: Tally) -> list[Check]:
    txs = {tx.id: tx for tx in await all_rows(session, Transaction)}
    payouts = await all_rows(session, Payout)
    stripe = await asyncio.to_thread(stripe_state, stack)
    return [
        payment_intents(txs, stripe),
        refunds(txs, stripe),
        transfers(payouts, tally, stripe),
        await ledger(session, txs, payouts),
        await events(session, redis, txs, payouts),
    ]
