"""The payment load a drill loses its store under: devstack/workload.py's seeded payments, refunds
and payouts through the HTTP API, the loss fired once a share of them has started; then the money
checks (one PaymentIntent and at most one capture per payment, refunds and transfers as Stripe has
them, a balanced ledger whose payables match captures, fees, refunds and payouts)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from devstack.money_checks import Check, all_rows, ledger, payment_intents, refunds, stripe_state
from devstack.throwaway import Stack
from devstack.workload import Client, Plan, Tally, Workload, make_parties, transfers
from payments.schema.tables import Payout, Transaction

CONCURRENCY = 6  # clients at once


async def run_load(stack: Stack, plan: Plan, tally: Tally, at: float, loss: Callable[[], Awaitable[None]]) -> None:
    """Run the whole workload; call `loss` once `at` (a share) of its payments have started."""
    async with (
        httpx.AsyncClient(base_url=stack.api, timeout=30) as http,
        httpx.AsyncClient(base_url=f"{stack.stripe_api_base()}/_emulator", timeout=10) as emulator,
    ):
        client = Client(http, tally)
        workload = Workload(client, await make_parties(stack, client, emulator, plan), tally)

        async def lose_when_due() -> None:
            while tally.started < at * len(plan.payments):  # noqa: ASYNC110 (the workload counts; nothing signals)
                await asyncio.sleep(0.05)
            await loss()

        async with asyncio.TaskGroup() as group:
            group.create_task(workload.run(plan, CONCURRENCY))
            group.create_task(lose_when_due())


async def money_checks(session: AsyncSession, stack: Stack, tally: Tally) -> list[Check]:
    txs = {tx.id: tx for tx in await all_rows(session, Transaction)}
    payouts = await all_rows(session, Payout)
    stripe = await asyncio.to_thread(stripe_state, stack)
    return [
        payment_intents(txs, stripe),
        refunds(txs, stripe),
        transfers(payouts, tally, stripe),
        await ledger(session, txs, payouts),
    ]
