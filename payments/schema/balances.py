"""A merchant's balances, read from the ledger and the payouts table. Shared by the payout
activities (which lock and then read) and the API (which only reads)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ScalarSelect, Select, and_, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from payments.schema.tables import (
    DISPUTE_CLOSED,
    Dispute,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Merchant,
    PayableBalance,
    Payout,
    Refund,
    Transaction,
)

IN_TRANSIT = ("pending", "in_transit")


def merchant_payable(merchant_id: str) -> str:
    return f"merchant_payable:{merchant_id}"


def _held_credits(hold: timedelta) -> ScalarSelect[int]:
    """The sum of the payable's capture credits younger than the hold period (zero or negative): not
    yet available. Read through the (account, currency, created_at) index: the window, not the history."""
    return (
        select(func.coalesce(func.sum(LedgerEntry.amount), 0))
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.ledger_transaction_id)
        .where(
            LedgerEntry.account_id == PayableBalance.account_id,
            LedgerEntry.currency == PayableBalance.currency,
            LedgerEntry.created_at > func.now() - hold,
            LedgerEntry.amount < 0,
            LedgerTransaction.reference.like("capture:%"),
        )
        .scalar_subquery()
    )


def _payable(hold: timedelta) -> ColumnElement[int]:
    """What the merchant may be paid: its payable balance (credits are negative), less what is held."""
    return -PayableBalance.balance + _held_credits(hold)


async def _refunds_in_flight(session: AsyncSession, merchant_id: str, currency: str) -> int:
    """Refunds reserved but not yet posted (on their way to Stripe): they will debit the payable,
    so they are not available."""
    pending = await session.execute(
        select(func.coalesce(func.sum(Refund.amount), 0))
        .join(Transaction, Transaction.id == Refund.tx_id)
        .where(
            Transaction.merchant_id == merchant_id,
            Refund.status == "pending",
            Refund.stripe_refund_id.is_(None),
            Refund.currency == currency,
        )
    )
    return int(pending.scalar_one())


async def available(session: AsyncSession, merchant_id: str, currency: str, hold: timedelta) -> int:
    payable = await session.execute(
        select(_payable(hold))
        .join(LedgerAccount, LedgerAccount.id == PayableBalance.account_id)
        .where(LedgerAccount.code == merchant_payable(merchant_id), PayableBalance.currency == currency)
    )
    return int(payable.scalar_one_or_none() or 0) - await _refunds_in_flight(session, merchant_id, currency)


def _with_payable_balance(query: Select[str]) -> Select[str]:
    """Merchants joined to their payable balance in their own currency."""
    return query.join(LedgerAccount, LedgerAccount.code == func.concat("merchant_payable:", Merchant.id)).join(
        PayableBalance,
        and_(PayableBalance.account_id == LedgerAccount.id, PayableBalance.currency == Merchant.currency),
    )


def payable_merchants(payout_schedule: str, after: str | None, limit: int, hold: timedelta) -> Select[str]:
    """One query for a page of merchants on a schedule with something available (keyset on id)."""
    query = (
        _with_payable_balance(select(Merchant.id))
        .where(Merchant.payout_schedule == payout_schedule, _payable(hold) > 0)
        .order_by(Merchant.id)
        .limit(limit)
    )
    return query.where(Merchant.id > after) if after else query


# The merchant's running debt on its payable (debits positive), entry by entry since `age` ago,
# counted back from its kept balance: its smallest value in that window and the value it had at
# the window's start, the part of a deficit that has lasted that long. Reads the window's entries,
# not the merchant's history.
_LASTING_DEFICIT = text("""
WITH cutoff AS (
    SELECT now() - CAST(:age AS interval) AS at
), account AS (
    SELECT id FROM ledger_accounts WHERE code = :code
), recent AS (
    SELECT e.id, e.created_at, e.amount FROM ledger_entries e, cutoff
    WHERE e.account_id = (SELECT id FROM account) AND e.currency = :currency AND e.created_at > cutoff.at
), earlier AS (
    SELECT coalesce(
        (SELECT balance FROM payable_balances WHERE account_id = (SELECT id FROM account) AND currency = :currency), 0
    ) - coalesce((SELECT sum(amount) FROM recent), 0) AS owed
), since AS (
    SELECT min(earlier.owed + running) AS lowest
    FROM earlier, (SELECT sum(amount) OVER (ORDER BY created_at, id) AS running FROM recent) AS steps
)
SELECT greatest(least(earlier.owed, coalesce(since.lowest, earlier.owed)), 0) FROM earlier, since
""")


async def lasting_deficit(session: AsyncSession, merchant_id: str, currency: str, age: timedelta) -> int:
    """How much of the merchant's deficit (a negative payable) has lasted at least `age` (0: none)."""
    deficit = await session.execute(
        _LASTING_DEFICIT, {"code": merchant_payable(merchant_id), "currency": currency, "age": age}
    )
    return int(deficit.scalar_one())


def merchants_in_deficit(after: str | None, limit: int) -> Select[str]:
    """A page of merchants whose payable is negative (keyset on id)."""
    query = (
        _with_payable_balance(select(Merchant.id)).where(PayableBalance.balance > 0).order_by(Merchant.id).limit(limit)
    )
    return query.where(Merchant.id > after) if after else query


@dataclass(frozen=True)
class Balance:
    merchant_id: str
    currency: str
    available: int
    in_transit: int
    paid: int
    disputed: int  # open disputes Stripe withdrew (in `available` already), back if won; inquiries are not


async def balance(session: AsyncSession, merchant: Merchant, hold: timedelta) -> Balance:
    sums = await session.execute(
        select(
            func.coalesce(func.sum(Payout.amount).filter(Payout.status.in_(IN_TRANSIT)), 0),
            func.coalesce(func.sum(Payout.amount).filter(Payout.status == "paid"), 0),
        ).where(Payout.merchant_id == merchant.id, Payout.currency == merchant.currency)
    )
    in_transit, paid = sums.one()
    disputed = await session.execute(
        select(func.coalesce(func.sum(Dispute.amount), 0)).where(
            Dispute.merchant_id == merchant.id,
            Dispute.currency == merchant.currency,
            Dispute.status.not_in(DISPUTE_CLOSED),
            Dispute.withdrawn_at.is_not(None),
        )
    )
    now_available = await available(session, merchant.id, merchant.currency, hold)
    return Balance(
        merchant.id, merchant.currency, now_available, int(in_transit), int(paid), int(disputed.scalar_one())
    )
