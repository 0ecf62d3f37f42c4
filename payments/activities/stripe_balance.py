"""The platform's balance at Stripe against the ledger's `stripe_clearing`, per currency: Stripe's
available + pending, less the top-ups the ledger never heard of, should equal it but for what is in
flight (payouts reserved whose transfer may have left, refunds Stripe holds as pending). What is
left is unexplained: a gauge the `StripeBalanceUnexplained` alert watches."""

from __future__ import annotations

import stripe
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from payments.activities import metrics
from payments.activities.heartbeat import heartbeating
from payments.activities.stripe_errors import final_or_transient
from payments.schema.messages import StripeBalanceCheck

_LEDGER = text("""
SELECT e.currency, sum(e.amount) FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
WHERE a.code = 'stripe_clearing' GROUP BY e.currency
""")
_IN_FLIGHT = text("""
SELECT currency, sum(amount) FROM (
    SELECT currency, amount FROM payouts WHERE status IN ('pending', 'in_transit')
    UNION ALL SELECT currency, amount FROM refunds WHERE status = 'pending' AND stripe_refund_id IS NOT NULL
) AS moving GROUP BY currency
""")


def judged(currency: str, stripe_total: int, top_ups: int, ledger: int, in_flight: int) -> StripeBalanceCheck:
    """Stripe may be behind the ledger by what is in flight, never ahead of it: the rest is unexplained."""
    difference = stripe_total - top_ups - ledger
    unexplained = difference if difference > 0 else min(difference + in_flight, 0)
    return StripeBalanceCheck(currency, stripe_total, top_ups, ledger, in_flight, unexplained)


class StripeBalance:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], client: stripe.StripeClient) -> None:
        self._sessions = sessions
        self._stripe = client

    @activity.defn
    async def check_stripe_balance(self) -> list[StripeBalanceCheck]:
        try:
            balance = await heartbeating(self._stripe.v1.balance.retrieve_async())
            top_ups = await self._top_ups()
        except stripe.StripeError as exc:
            raise final_or_transient(exc) from exc
        at_stripe: dict[str, int] = {}
        for funds in (*balance.available, *balance.pending):
            currency, amount = funds["currency"], int(funds["amount"])
            at_stripe[currency] = at_stripe.get(currency, 0) + amount
        async with self._sessions() as session:
            ledger = {c: int(s) for c, s in await session.execute(_LEDGER)}
            in_flight = {c: int(s) for c, s in await session.execute(_IN_FLIGHT)}
        checks = [
            judged(c, at_stripe.get(c, 0), top_ups.get(c, 0), ledger.get(c, 0), in_flight.get(c, 0))
            for c in sorted(at_stripe.keys() | ledger.keys())
        ]
        for check in checks:
            metrics.STRIPE_BALANCE_UNEXPLAINED.labels(check.currency).set(check.unexplained)
        return checks

    async def _top_ups(self) -> dict[str, int]:
        """Money added to the balance from outside (the ledger has no posting for it)."""
        listed = self._stripe.v1.balance_transactions.list_async(params={"type": "topup", "limit": 100})
        totals: dict[str, int] = {}
        async for txn in (await listed).auto_paging_iter():
            totals[txn.currency] = totals.get(txn.currency, 0) + int(txn.net)
        return totals
