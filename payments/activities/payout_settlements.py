"""Which merchant-payable entries a payout settles (its statement), written in the payout's own
database transaction: at the reserve, every entry of the merchant not yet settled, except the
capture credits still held (as `schema.balances.available` leaves them out); a failed payout gives
them back to the next one and keeps only its reserve and its reversal (which cancel out)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from payments.schema.balances import merchant_payable

_SETTLE = text("""
INSERT INTO payout_entries (ledger_entry_id, payout_id)
SELECT e.id, :payout_id FROM ledger_entries e
JOIN ledger_transactions t ON t.id = e.ledger_transaction_id
WHERE e.account_id = (SELECT id FROM ledger_accounts WHERE code = :code) AND e.currency = :currency
  AND NOT EXISTS (SELECT 1 FROM payout_entries s WHERE s.ledger_entry_id = e.id)
  AND NOT (e.amount < 0 AND t.reference LIKE 'capture:%' AND e.created_at > now() - CAST(:hold AS interval))
""")

_RELEASE = text("""
DELETE FROM payout_entries s USING ledger_entries e, ledger_transactions t
WHERE s.payout_id = :payout_id AND e.id = s.ledger_entry_id AND t.id = e.ledger_transaction_id
  AND t.reference <> :reserve
""")

_KEEP_REVERSAL = text("""
INSERT INTO payout_entries (ledger_entry_id, payout_id)
SELECT e.id, :payout_id FROM ledger_entries e
JOIN ledger_transactions t ON t.id = e.ledger_transaction_id
WHERE t.reference = :reversal
  AND e.account_id = (SELECT id FROM ledger_accounts WHERE code = :code)
ON CONFLICT DO NOTHING
""")


async def settle(session: AsyncSession, payout_id: str, merchant_id: str, currency: str, hold: timedelta) -> None:
    """The payout (its reserve posted) settles what the merchant has not been paid for yet."""
    params = {"payout_id": payout_id, "code": merchant_payable(merchant_id), "currency": currency, "hold": hold}
    await session.execute(_SETTLE, params)


async def release(session: AsyncSession, payout_id: str, merchant_id: str) -> None:
    """A failed payout (its reversal posted) settles nothing: the next payout takes its entries."""
    await session.execute(_RELEASE, {"payout_id": payout_id, "reserve": f"payout:{payout_id}:reserve"})
    reversal = {
        "payout_id": payout_id,
        "reversal": f"payout:{payout_id}:reversal",
        "code": merchant_payable(merchant_id),
    }
    await session.execute(_KEEP_REVERSAL, reversal)
