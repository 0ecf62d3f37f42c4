"""The books as a merchant and a finance team read them, from the ledger: a payout's statement
(the entries it settled, migration 0010), a merchant's month, and the platform's month-end report.
Read by the API and the CLI; amounts are minor units, as the merchant sees them (money to the
merchant positive)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from payments.schema.balances import merchant_payable

# What a posting is, from its reference (payments/activities/*_records.py name them).
KIND = """CASE
    WHEN t.reference LIKE 'capture:%' THEN 'payment'
    WHEN t.reference LIKE 'refund:%\\:reversal' THEN 'refund_returned'
    WHEN t.reference LIKE 'refund:%' THEN 'refund'
    WHEN t.reference LIKE 'dispute:%\\:withdrawal' THEN 'dispute'
    WHEN t.reference LIKE 'dispute:%\\:reinstatement' THEN 'dispute_won'
    WHEN t.reference LIKE 'reversal:%' THEN 'transfer_reversal'
    WHEN t.reference LIKE 'payout:%' THEN 'payout'
    WHEN t.reference LIKE 'stripe_fee:%' THEN 'stripe_fee'
    ELSE 'adjustment' END"""
KINDS = ("payment", "refund", "refund_returned", "dispute", "dispute_won", "transfer_reversal", "payout", "adjustment")

# One line per entry a payout settled (its own reserve aside): net to the merchant, the fee in it
# (ours on a payment or a refund, Stripe's dispute fee on a dispute), and the payment it is about.
_LINE = f"""
SELECT e.id, e.created_at, {KIND} AS kind, t.reference,
       coalesce(rf.tx_id, d.tx_id, CASE WHEN t.reference LIKE 'capture:%' THEN substr(t.reference, 9) END) AS tx_id,
       -e.amount AS net,
       coalesce(
           CASE WHEN t.reference LIKE 'dispute:%\\:withdrawal' THEN d.fee END,
           -(SELECT sum(r.amount) FROM ledger_entries r
             WHERE r.ledger_transaction_id = e.ledger_transaction_id
               AND r.account_id = (SELECT id FROM ledger_accounts WHERE code = 'platform_revenue')),
           0) AS fee
FROM payout_entries s
JOIN ledger_entries e ON e.id = s.ledger_entry_id
JOIN ledger_transactions t ON t.id = e.ledger_transaction_id
LEFT JOIN refunds rf ON t.reference LIKE 'refund:%' AND rf.id = split_part(t.reference, ':', 2)
LEFT JOIN disputes d ON t.reference LIKE 'dispute:%' AND d.id = split_part(t.reference, ':', 2)
WHERE s.payout_id = :payout_id AND t.reference NOT LIKE 'payout:%'
"""  # noqa: S608 (constant fragments only)
_LINES = text(f"{_LINE} AND e.id > :after ORDER BY e.id LIMIT :limit")
_TOTALS = text(f"SELECT kind, count(*), sum(net), sum(fee) FROM ({_LINE}) AS lines GROUP BY kind")  # noqa: S608


@dataclass(frozen=True)
class StatementLine:
    entry_id: int
    created_at: datetime
    kind: str
    reference: str
    tx_id: str | None
    amount: int  # gross: net + fee
    fee: int
    net: int


@dataclass(frozen=True)
class KindTotal:
    count: int
    amount: int
    fee: int
    net: int


@dataclass(frozen=True)
class StatementTotals:
    by_kind: dict[str, KindTotal]
    net: int  # what the lines give the merchant
    carried_over: int  # paid now from before the lines (positive) or held back for later (negative)
    payout: int  # net + carried_over

    def as_dict(self) -> dict[str, Any]:
        return {
            "by_kind": {k: vars(v) for k, v in self.by_kind.items()},
            "net": self.net,
            "carried_over": self.carried_over,
            "payout": self.payout,
        }


def _line(row: Any) -> StatementLine:
    entry_id, created_at, kind, reference, tx_id, net, fee = row
    return StatementLine(entry_id, created_at, kind, reference, tx_id, int(net) + int(fee), int(fee), int(net))


async def payout_lines(session: AsyncSession, payout_id: str, after: int, limit: int) -> list[StatementLine]:
    """A page of the payout's lines, oldest entry first, after entry id `after`."""
    rows = await session.execute(_LINES, {"payout_id": payout_id, "after": after, "limit": limit})
    return [_line(row) for row in rows]


async def payout_totals(session: AsyncSession, payout_id: str, payout_amount: int) -> StatementTotals:
    """The statement's totals by kind; they sum to the payout's amount (`carried_over`: what a
    refund in flight held back, or an earlier payout left, whatever the lines do not explain)."""
    rows = (await session.execute(_TOTALS, {"payout_id": payout_id})).all()
    by_kind = {kind: KindTotal(int(count), int(net) + int(fee), int(fee), int(net)) for kind, count, net, fee in rows}
    net = sum(t.net for t in by_kind.values())
    return StatementTotals(by_kind, net, payout_amount - net, payout_amount)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """`2026-11` -> its first instant and the next month's (UTC). ValueError if not a month."""
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


_ACCOUNT_BEFORE = text("""
SELECT coalesce(-sum(e.amount), 0) FROM ledger_entries e
WHERE e.account_id = (SELECT id FROM ledger_accounts WHERE code = :code) AND e.currency = :currency
  AND e.created_at < :at
""")
_MOVEMENTS = text(f"""
SELECT {KIND} AS kind, count(*), -sum(e.amount) FROM ledger_entries e
JOIN ledger_transactions t ON t.id = e.ledger_transaction_id
WHERE e.account_id = (SELECT id FROM ledger_accounts WHERE code = :code) AND e.currency = :currency
  AND e.created_at >= :start AND e.created_at < :end
GROUP BY kind ORDER BY kind
""")  # noqa: S608 (constant fragments only)


@dataclass(frozen=True)
class MonthlyStatement:
    merchant_id: str
    month: str
    currency: str
    opening_balance: int
    movements: dict[str, dict[str, int]]  # kind -> {"count", "amount"}
    closing_balance: int


async def merchant_month(session: AsyncSession, merchant_id: str, currency: str, month: str) -> MonthlyStatement:
    """What the platform owed the merchant when the month opened, what moved it, and what it owed
    when the month closed (payouts reserved count as paid out)."""
    start, end = month_bounds(month)
    code = merchant_payable(merchant_id)
    opening = int(
        (await session.execute(_ACCOUNT_BEFORE, {"code": code, "currency": currency, "at": start})).scalar_one()
    )
    rows = await session.execute(_MOVEMENTS, {"code": code, "currency": currency, "start": start, "end": end})
    movements = {kind: {"count": int(count), "amount": int(amount)} for kind, count, amount in rows}
    closing = opening + sum(m["amount"] for m in movements.values())
    return MonthlyStatement(merchant_id, month, currency, opening, movements, closing)


# The platform's month, per currency, from the postings made in it (Stripe's side of each figure is
# the balance transactions of the same kind: charges, refunds, dispute adjustments, transfers).
_REPORT = text("""
WITH month AS (
    SELECT e.currency, a.code, t.reference, e.amount FROM ledger_entries e
    JOIN ledger_accounts a ON a.id = e.account_id
    JOIN ledger_transactions t ON t.id = e.ledger_transaction_id
    WHERE e.created_at >= :start AND e.created_at < :end
), owed AS (
    SELECT e.currency, -sum(e.amount) AS amount FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
    WHERE e.created_at < :end AND (a.code LIKE 'merchant\\_payable:%' OR a.code = 'payouts_in_transit')
    GROUP BY e.currency
), clearing AS (
    SELECT e.currency, sum(e.amount) AS amount FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
    WHERE e.created_at < :end AND a.code = 'stripe_clearing' GROUP BY e.currency
), figures AS (
    SELECT currency,
        coalesce(sum(amount) FILTER (WHERE code = 'stripe_clearing' AND reference LIKE 'capture:%'), 0)
            AS gross_volume,
        coalesce(-sum(amount) FILTER (WHERE code = 'stripe_clearing' AND reference LIKE 'refund:%'), 0) AS refunds,
        coalesce(-sum(amount) FILTER (WHERE code = 'stripe_clearing' AND reference LIKE 'dispute:%'), 0) AS disputes,
        coalesce(-sum(amount) FILTER (WHERE code = 'platform_revenue'), 0) AS our_fees,
        coalesce(sum(amount) FILTER (WHERE code = 'stripe_fees'), 0) AS stripe_fees,
        coalesce(sum(amount) FILTER (WHERE code = 'payouts_in_transit' AND reference LIKE 'payout:%\\:paid'), 0)
            AS paid_out,
        coalesce(sum(amount) FILTER (WHERE code = 'stripe_clearing' AND reference LIKE 'reversal:%'), 0)
            AS recovered_from_merchants
    FROM month GROUP BY currency
)
SELECT c.currency, coalesce(f.gross_volume, 0), coalesce(f.refunds, 0), coalesce(f.disputes, 0),
       coalesce(f.our_fees, 0), coalesce(f.stripe_fees, 0), coalesce(f.paid_out, 0),
       coalesce(f.recovered_from_merchants, 0), coalesce(o.amount, 0), c.amount
FROM clearing c LEFT JOIN figures f ON f.currency = c.currency LEFT JOIN owed o ON o.currency = c.currency
ORDER BY c.currency
""")
REPORT_FIELDS = (
    "currency",
    "gross_volume",
    "refunds",
    "disputes",
    "our_fees",
    "stripe_fees",
    "net_revenue",
    "paid_out",
    "recovered_from_merchants",
    "owed_to_merchants",
    "stripe_balance",
)


async def month_end(session: AsyncSession, month: str) -> list[dict[str, Any]]:
    """The month's figures per currency: `disputes` is what Stripe withdrew less what it gave back
    (dispute fees in it), `net_revenue` our fees less Stripe's, `owed_to_merchants` what the
    platform owes merchants at the month's end (payouts not yet transferred included), and
    `stripe_balance` what the ledger says Stripe held for the platform then."""
    start, end = month_bounds(month)
    rows = await session.execute(_REPORT, {"start": start, "end": end})
    report = []
    for currency, gross, refunds, disputes, ours, stripes, paid, recovered, owed, balance in rows:
        figures = [int(v) for v in (gross, refunds, disputes, ours, stripes, paid, recovered, owed, balance)]
        gross, refunds, disputes, ours, stripes, paid, recovered, owed, balance = figures
        report.append(
            dict(
                zip(
                    REPORT_FIELDS,
                    (currency, gross, refunds, disputes, ours, stripes, ours - stripes, paid, recovered, owed, balance),
                    strict=True,
                )
            )
        )
    return report
