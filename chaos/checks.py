"""The invariants a chaos run must keep: the money checks of any stack (devstack/money_checks.py),
and what this workload expected: each payment's end state, each payout's, and every HTTP answer."""

from __future__ import annotations

from collections import Counter

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
from devstack.workload import IN_FLIGHT, Expected, Plan, Tally, transfers
from payments.schema.tables import Payout, Transaction


def end_states(plan: Plan, tally: Tally, txs: dict[str, Transaction]) -> Check:
    check = Check("end states", {"accepted inits": len(tally.accepted)})
    for payment in plan.payments:
        tx = txs.get(tally.accepted.get(payment.number, ""))
        if payment.number in tally.accepted and tx is None:
            check.violations.append(f"{payment.key}: accepted as {tally.accepted[payment.number]}, no row")
        if tx is None:
            continue
        seen = (tx.status, tx.amount_captured, tx.amount_refunded)
        want = payment.expected
        if tx.id in tally.walked_away:  # captured, then its client left: no refund was asked for
            want = Expected("confirmed", payment.capture or 0, 0)
        if seen != (want.status, want.captured, want.refunded):
            check.violations.append(f"{payment.key} ({payment.kind}) {tx.id}: {seen}, want {want}")
    statuses = Counter(tx.status for tx in txs.values())
    check.figures |= {f"status {status}": n for status, n in sorted(statuses.items())}
    check.figures["clients walked away"] = len(tally.walked_away)
    stuck = [tx.id for tx in txs.values() if tx.status in IN_FLIGHT]
    check.figures["stuck pending"] = len(stuck)
    check.violations += [f"{tx_id} stuck in pending" for tx_id in stuck]
    return check


def http(tally: Tally) -> Check:
    classes = Counter(f"HTTP {code // 100}xx" for code in tally.statuses.elements())
    check = Check("http", dict(sorted(classes.items())))
    check.figures |= {
        "HTTP 500": tally.statuses[500],
        "gave up": len(tally.gave_up),
        "unexpected": len(tally.unexpected),
    }
    check.violations += [f"HTTP 500 to {answer}" for answer in tally.server_errors]
    check.violations += [f"gave up after retries: {call}" for call in tally.gave_up]
    check.violations += [f"unexpected answer: {answer}" for answer in tally.unexpected]
    return check


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
