"""The ledger's invariants as reconciliation checks them, from first principles in SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def ledger_findings(session: AsyncSession) -> list[tuple[str, str, dict[str, Any]]]:
    """(discrepancy, subject, details) for each posting that does not balance and each merchant
    payable the sales, refunds, payouts and disputes do not explain."""
    unbalanced = (await session.execute(text(UNBALANCED))).all()
    payables = (await session.execute(text(PAYABLE_MISMATCH))).all()
    return [
        ("ledger_unbalanced", str(ledger_tx_id), {"currency": currency, "sum": int(total)})
        for ledger_tx_id, currency, total in unbalanced
    ] + [
        ("merchant_payable_mismatch", merchant_id, {"expected": int(expected), "ledger": int(actual)})
        for merchant_id, expected, actual in payables
    ]


# Can only be non-empty if someone bypassed the commit-time trigger; checked all the same.
UNBALANCED = """
SELECT ledger_transaction_id, currency, sum(amount) FROM ledger_entries
GROUP BY ledger_transaction_id, currency HAVING sum(amount) <> 0
"""

# Each merchant's payable from first principles: captures less fees, less refunds net of the fee
# share given back, less payouts reserved or paid, less disputes (amount and fee once Stripe withdrew
# them; a reinstated amount comes back), plus transfer reversals taken back against a deficit;
# against what the ledger says.
PAYABLE_MISMATCH = """
WITH sales AS (
    SELECT t.merchant_id,
           sum(t.amount_captured - div(t.amount_captured * m.fee_bps, 10000)
               - (t.amount_refunded - div(div(t.amount_captured * m.fee_bps, 10000) * t.amount_refunded,
                                          greatest(t.amount_captured, 1)))) AS net
    FROM transactions t JOIN merchants m ON m.id = t.merchant_id
    WHERE t.amount_captured > 0 GROUP BY t.merchant_id
), paid AS (
    SELECT merchant_id, sum(amount) AS amount FROM payouts
    WHERE status IN ('in_transit', 'paid') GROUP BY merchant_id
), disputed AS (
    SELECT merchant_id, coalesce(sum(amount + fee) FILTER (WHERE withdrawn_at IS NOT NULL), 0)
                        - coalesce(sum(amount) FILTER (WHERE reinstated_at IS NOT NULL), 0) AS amount
    FROM disputes GROUP BY merchant_id
), reversed AS (
    SELECT merchant_id, sum(amount) AS amount FROM transfer_reversals WHERE status = 'reversed' GROUP BY merchant_id
), ledger AS (
    SELECT substr(a.code, length('merchant_payable:') + 1) AS merchant_id, -sum(e.amount) AS balance
    FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
    WHERE a.code LIKE 'merchant\\_payable:%' GROUP BY a.code
)
SELECT m.id, e.expected, coalesce(l.balance, 0) AS actual
FROM merchants m
LEFT JOIN sales s ON s.merchant_id = m.id
LEFT JOIN paid p ON p.merchant_id = m.id
LEFT JOIN disputed d ON d.merchant_id = m.id
LEFT JOIN reversed r ON r.merchant_id = m.id
LEFT JOIN ledger l ON l.merchant_id = m.id
CROSS JOIN LATERAL (
    SELECT coalesce(s.net, 0) - coalesce(p.amount, 0) - coalesce(d.amount, 0) + coalesce(r.amount, 0) AS expected
) e
WHERE e.expected <> coalesce(l.balance, 0)
"""
