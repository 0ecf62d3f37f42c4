"""The three-way match, reconciliation's `settlement` phase: each charge Stripe settled in the
window (its balance transaction, listed by when the money moved, so a capture days after its
authorization is matched in the run that saw the capture), against our capture and Stripe-fee
postings (amount, fee, net, available_on) and the payout that settled the merchant's share; each
payout paid in the window, its transfer against the sum of what it settled; and every capture
still unpaid well past when a payout should have taken it. Stripe's side is read a list page (100
balance transactions, their charges expanded) at a time, not one request per payment.

What is safe is fixed (a Stripe fee never posted is posted, from Stripe's balance transaction);
the rest goes to the review queue."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NotRequired, TypedDict

from sqlalchemy import and_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payments.activities import ledger
from payments.activities import reconciliation_slices as slices
from payments.activities.reconciliation_log import Logbook
from payments.activities.reconciliation_rules import Obj
from payments.activities.reconciliation_slices import Slice
from payments.schema.database import autocommitted
from payments.schema.driver import Statement, fetch_rows
from payments.schema.tables import CAPTURED_PAYMENT_STATUSES, Payout

Retrieve = Callable[..., Awaitable[Obj | None]]  # (kind, Stripe id, **params) -> the object, None if missing
Get = Callable[..., Awaitable[Any]]  # (path, shape, **params) -> Stripe's answer, decoded as shape has it
LIST_LIMIT = 100  # Stripe's largest list page
RETRIEVALS = 8
# How long after its money is available at Stripe a capture may wait for a payout, by schedule.
PAYOUT_PERIOD = {"daily": timedelta(days=1), "monthly": timedelta(days=32)}


class _Charge(TypedDict, total=False):
    payment_intent: str | None
    metadata: dict[str, str] | None


class _BalanceTransaction(TypedDict):
    id: str
    amount: int
    fee: int
    net: int
    available_on: int
    source: NotRequired[_Charge | str | None]  # the charge, expanded


class BalanceTransactions(TypedDict):
    """A page of Stripe's charge balance transactions with only the fields the match reads: each
    charge is Stripe's whole object, which decoded whole cost the worker more than the match."""

    data: list[_BalanceTransaction]
    has_more: bool


# Our side of each payment named: its row, its merchant's payout schedule, its capture posting
# (the clearing debit it made; whether a payout settled the merchant's credit) and Stripe's fee we
# posted (the clearing credit it made), in one statement for a page of payments. A posting not
# made at all has found = NULL. Only merchant-payable entries are ever settled (payout_entries),
# and the clearing account is looked up once a statement, not once an entry. The sums (numeric)
# come back as bigint: asyncpg builds a Decimal for each numeric, 0.13 ms of the worker's a page.
_OURS = Statement.of(
    text("""
SELECT x.id, x.status, x.stripe_payment_intent_id, x.currency, m.payout_schedule,
       cap.found AS capture_found, cap.amount AS captured, cap.settled,
       fee.found AS fee_found, fee.amount AS fee_amount
FROM transactions x
JOIN merchants m ON m.id = x.merchant_id
LEFT JOIN LATERAL (
    SELECT true AS found,
           coalesce(sum(e.amount) FILTER (WHERE e.account_id = (
               SELECT id FROM ledger_accounts WHERE code = 'stripe_clearing')), 0)::bigint AS amount,
           bool_or(s.ledger_entry_id IS NOT NULL) AS settled
    FROM ledger_transactions t
    LEFT JOIN ledger_entries e ON e.ledger_transaction_id = t.id
    LEFT JOIN payout_entries s ON s.ledger_entry_id = e.id
    WHERE t.reference = 'capture:' || x.id
    GROUP BY t.reference
) cap ON true
LEFT JOIN LATERAL (
    SELECT true AS found,
           coalesce(sum(e.amount) FILTER (WHERE e.account_id = (
               SELECT id FROM ledger_accounts WHERE code = 'stripe_clearing')), 0)::bigint AS amount
    FROM ledger_transactions t
    LEFT JOIN ledger_entries e ON e.ledger_transaction_id = t.id
    WHERE t.reference = 'stripe_fee:' || x.id
    GROUP BY t.reference
) fee ON true
WHERE x.id = ANY(:tx_ids)
""")
)

# Captures no payout has settled, oldest first, whose merchant's payout is overdue by the ledger's clock.
_UNPAID = text("""
SELECT e.id, split_part(t.reference, ':', 2), e.created_at, m.payout_schedule
FROM ledger_entries e
JOIN ledger_transactions t ON t.id = e.ledger_transaction_id
JOIN ledger_accounts a ON a.id = e.account_id
JOIN merchants m ON a.code = 'merchant_payable:' || m.id
WHERE t.reference LIKE 'capture:%' AND e.amount < 0 AND e.id > :after
  AND e.created_at < now() - CAST(:hold AS interval) - CASE m.payout_schedule
      WHEN 'monthly' THEN CAST(:monthly AS interval) ELSE CAST(:daily AS interval) END
  AND NOT EXISTS (SELECT 1 FROM payout_entries s WHERE s.ledger_entry_id = e.id)
ORDER BY e.id LIMIT :limit
""")

# The net of what each payout settled (its own reserve and reversal aside), and what the merchant's
# earlier paid payouts settled but did not pay (held back: a partial payout, a refund in flight).
_SETTLED = text("""
WITH lines AS (
    SELECT s.payout_id, -sum(e.amount) AS net FROM payout_entries s
    JOIN ledger_entries e ON e.id = s.ledger_entry_id
    JOIN ledger_transactions t ON t.id = e.ledger_transaction_id
    WHERE t.reference NOT LIKE 'payout:%' AND s.payout_id IN (
        SELECT q.id FROM payouts p JOIN payouts q ON q.merchant_id = p.merchant_id AND q.currency = p.currency
        WHERE p.id = ANY(:payouts) AND q.status = 'paid' AND (q.created_at, q.id) <= (p.created_at, p.id))
    GROUP BY s.payout_id
)
SELECT p.id, coalesce((SELECT net FROM lines WHERE payout_id = p.id), 0),
       coalesce((SELECT sum(coalesce(l.net, 0) - q.amount) FROM payouts q LEFT JOIN lines l ON l.payout_id = q.id
                 WHERE q.merchant_id = p.merchant_id AND q.currency = p.currency AND q.status = 'paid'
                   AND (q.created_at, q.id) < (p.created_at, p.id)), 0)
FROM payouts p WHERE p.id = ANY(:payouts) AND EXISTS (SELECT 1 FROM payout_entries s WHERE s.payout_id = p.id)
""")


def _tx_id(charge: Obj) -> str:
    """Our payment a charge is for, as its PaymentIntent's metadata (copied to the charge) names it."""
    return str((charge.get("metadata") or {}).get("tx_id") or "")


class SettlementChecks:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        lookups: async_sessionmaker[AsyncSession],  # generic plans: `_OURS` (Reconciler's docstring)
        get: Get,
        retrieve: Retrieve,
        logbook: Logbook,
        margin: timedelta,
        page_size: int,
        payout_hold: timedelta,
        pages_per_activity: int = 1,
        slices_at_once: int = 1,
    ) -> None:
        self._sessions, self._lookups = sessions, lookups
        self._get, self._retrieve = get, retrieve
        self._logbook = logbook
        self._margin, self._page_size, self._hold = margin, page_size, payout_hold
        self._pages_per_activity, self._slices = pages_per_activity, slices_at_once

    async def page(
        self, run_id: str, start: datetime, end: datetime, cursor: str | None, counts: Counter[str]
    ) -> str | None:
        """One page of a pass (`payments|…`, then `transfers|…`, then `unpaid|…`); the next cursor."""
        part, *after = (cursor or "payments").split("|")
        if part == "payments":
            return await self._payments(run_id, start, end, after, counts)
        if part == "transfers":
            return await self._transfers(run_id, start, end, after, counts)
        return await self._unpaid(run_id, int(after[0]) if after else 0, counts)

    # --- each charge Stripe settled in the window ---

    async def _payments(
        self, run_id: str, start: datetime, end: datetime, after: list[str], counts: Counter[str]
    ) -> str | None:
        """Up to `pages_per_activity` pages of Stripe's charge balance transactions in each slice
        of the window, the slices at once, each page matched with our payments named in its
        charges' metadata. (A cursor of an older run, `payments|<id>` or `payments|<time>|<id>`,
        starts the list again: a match is idempotent.)"""
        if len(after) == 1 and slices.is_cursor(after[0]):
            parts = slices.from_cursor(after[0])
        else:
            parts = slices.split(*slices.window(start, end, self._margin), self._slices)

        async def match(_: Slice, txns: list[Obj]) -> None:
            await self._match_page(run_id, txns, counts)

        left = slices.to_cursor(await slices.read(parts, self._balance_transactions, match, self._pages_per_activity))
        return f"payments|{left}" if left is not None else "transfers"

    async def _balance_transactions(self, part: Slice) -> Obj:
        params: dict[str, Any] = {
            "type": "charge",
            "limit": min(self._page_size, LIST_LIMIT),
            "created": {"gte": part.gte, "lt": part.lt},
            "expand": ["data.source"],
        }
        if part.after is not None:
            params["starting_after"] = part.after
        return await self._get("/v1/balance_transactions", BalanceTransactions, **params)

    async def _match_page(self, run_id: str, txns: list[Obj], counts: Counter[str]) -> None:
        charges = {txn["id"]: txn["source"] for txn in txns if isinstance(txn.get("source"), dict)}
        tx_ids = sorted({_tx_id(charge) for charge in charges.values()} - {""})
        rows = {row.id: row for row in await fetch_rows(self._lookups, _OURS, {"tx_ids": tx_ids})}
        for txn in txns:
            counts["settlement_checked"] += 1
            charge = charges.get(txn["id"], {})
            found = rows.get(_tx_id(charge))
            # A charge of no payment of ours, or one our books do not show captured yet: the
            # payments phases' finding, not this one's.
            if found is None or found.status not in CAPTURED_PAYMENT_STATUSES:
                continue
            if found.stripe_payment_intent_id == charge.get("payment_intent"):
                await self._match(run_id, found, txn, counts)

    async def _match(self, run_id: str, ours: Any, txn: Obj, counts: Counter[str]) -> None:
        """`ours`: a row of _OURS."""
        tx_id = ours.id
        if not ours.capture_found:
            return  # the capture posting itself is the ledger phase's finding
        captured = int(ours.captured)
        # Stripe's fee as we posted it (the clearing credit it made), or Stripe's own when never posted.
        fee = -int(ours.fee_amount) if ours.fee_found else int(txn["fee"])
        stripe_side = {"amount": txn["amount"], "fee": txn["fee"], "net": txn["net"], "balance_transaction": txn["id"]}
        if not ours.fee_found:
            async with self._sessions.begin() as session:
                await ledger.post_stripe_fee(session, tx_id, ours.currency, fee)
            await self._logbook.log(
                run_id, counts, "stripe_fee_not_posted", tx_id, stripe_side, fixed=True, tx_id=tx_id
            )
        elif fee != txn["fee"]:
            details = stripe_side | {"ours": fee}
            await self._logbook.log(run_id, counts, "stripe_fee_mismatch", tx_id, details, tx_id=tx_id)
            return
        if (captured, captured - fee) != (txn["amount"], txn["net"]):
            details = stripe_side | {"ours_amount": captured, "ours_net": captured - fee}
            await self._logbook.log(run_id, counts, "stripe_net_mismatch", tx_id, details, tx_id=tx_id)
            return
        schedule = ours.payout_schedule
        if not ours.settled and self._overdue(datetime.fromtimestamp(txn["available_on"], UTC), schedule):
            details = {"available_on": txn["available_on"], "payout_schedule": schedule}
            await self._logbook.log(run_id, counts, "payment_not_paid_out", tx_id, details, tx_id=tx_id)

    def _overdue(self, available_on: datetime, schedule: str) -> bool:
        expected = available_on + self._hold + PAYOUT_PERIOD.get(schedule, PAYOUT_PERIOD["monthly"])
        return expected + self._margin < datetime.now(UTC)

    # --- each payout paid in the window: its transfer against what it settled ---

    async def _transfers(
        self, run_id: str, start: datetime, end: datetime, after: list[str], counts: Counter[str]
    ) -> str | None:
        query = select(Payout).where(
            Payout.status == "paid",
            Payout.stripe_transfer_id.is_not(None),
            and_(Payout.updated_at >= start - self._margin, Payout.updated_at < end),
        )
        if len(after) == 2:
            query = query.where(
                tuple_(Payout.updated_at, Payout.id) > tuple_(datetime.fromisoformat(after[0]), after[1])
            )
        async with autocommitted(self._sessions) as session:
            payouts = list(
                (await session.execute(query.order_by(Payout.updated_at, Payout.id).limit(self._page_size))).scalars()
            )
            settled_rows = await session.execute(_SETTLED, {"payouts": [p.id for p in payouts]})
            settled = {payout_id: (int(net), int(held)) for payout_id, net, held in settled_rows}
        slots = asyncio.Semaphore(RETRIEVALS)

        async def read(transfer_id: str | None) -> Obj | None:
            async with slots:
                return await self._retrieve("transfer", transfer_id)

        transfers = await asyncio.gather(*(read(p.stripe_transfer_id) for p in payouts))
        for payout, transfer in zip(payouts, transfers, strict=True):
            counts["settlement_checked"] += 1
            if transfer is None or payout.id not in settled:
                continue  # a transfer Stripe lacks is our_payouts' finding; no statement: before 0010
            lines, held_before = settled[payout.id]
            # A transfer pays what its payout settled, less what it holds back, plus what earlier
            # payouts held back: never more than that, and exactly its statement's total.
            if transfer["amount"] != payout.amount or transfer["amount"] > lines + held_before:
                details = {"transfer": transfer["amount"], "settled": lines, "held_before": held_before}
                await self._logbook.log(
                    run_id, counts, "transfer_settlement_mismatch", transfer["id"], details, payout_id=payout.id
                )
        if len(payouts) == self._page_size:
            return f"transfers|{payouts[-1].updated_at.isoformat()}|{payouts[-1].id}"
        return "unpaid"

    # --- captures no payout took, long after they should have been ---

    async def _unpaid(self, run_id: str, after: int, counts: Counter[str]) -> str | None:
        params = {
            "after": after,
            "limit": self._page_size,
            "hold": self._hold + self._margin,
            "daily": PAYOUT_PERIOD["daily"],
            "monthly": PAYOUT_PERIOD["monthly"],
        }
        async with autocommitted(self._sessions) as session:
            rows = (await session.execute(_UNPAID, params)).all()
        for _, tx_id, created_at, schedule in rows:
            details = {"captured_at": created_at.isoformat(), "payout_schedule": schedule}
            await self._logbook.log(run_id, counts, "payment_not_paid_out", tx_id, details, tx_id=tx_id)
        return f"unpaid|{rows[-1][0]}" if len(rows) == self._page_size else None
