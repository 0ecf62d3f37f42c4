"""Double-entry postings. Every posting has a unique reference, so a retried activity posts once;
PostgreSQL refuses any posting that does not sum to zero within the statement inserting its entries."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from payments.schema.balances import merchant_payable
from payments.schema.tables import LedgerAccount, LedgerEntry, LedgerTransaction

STRIPE_CLEARING = "stripe_clearing"
PLATFORM_REVENUE = "platform_revenue"
PAYOUTS_IN_TRANSIT = "payouts_in_transit"
STRIPE_FEES = "stripe_fees"  # expense: what Stripe kept of each charge (never returned on a refund)


def platform_fee(amount: int, fee_bps: int) -> int:
    """The platform's cut of a capture, rounded down (the merchant keeps the fraction)."""
    return amount * fee_bps // 10_000


# Account ids by database and code: an account is never renamed or deleted, so its id, once
# committed, holds for good. Every capture posts to the same three accounts (the platform's two
# and its merchant's): without this, two statements of every posting looked them up again.
_KNOWN_ACCOUNTS: dict[tuple[str, str], int] = {}


async def account_ids(session: AsyncSession, codes: list[str]) -> dict[str, int]:
    database = str((await session.connection()).engine.url)
    ids = {code: _KNOWN_ACCOUNTS[database, code] for code in codes if (database, code) in _KNOWN_ACCOUNTS}
    missing = [code for code in codes if code not in ids]
    if not missing:
        return ids
    created = await session.execute(
        insert(LedgerAccount)
        .values([{"code": c} for c in missing])
        .on_conflict_do_nothing(index_elements=["code"])
        .returning(LedgerAccount.code, LedgerAccount.id)
    )
    ids |= {code: account_id for code, account_id in created}
    # An account this transaction created is not remembered: a rollback would leave a dangling id.
    uncommitted = session.info.setdefault("created_ledger_accounts", set())
    uncommitted |= {code for code in missing if code in ids}
    existing = [code for code in missing if code not in ids]
    if existing:
        rows = await session.execute(
            select(LedgerAccount.code, LedgerAccount.id).where(LedgerAccount.code.in_(existing))
        )
        for code, account_id in rows:
            ids[code] = account_id
            if code not in uncommitted:  # committed by another transaction: kept
                _KNOWN_ACCOUNTS[database, code] = account_id
    return ids


async def post(
    session: AsyncSession, reference: str, currency: str, entries: dict[str, int], description: str | None = None
) -> bool:
    """Post `entries` (account code -> signed amount, debit positive) once. False if already posted."""
    return reference in await post_all(session, [Posting(reference, currency, entries, description)])


@dataclass(frozen=True)
class Posting:
    reference: str
    currency: str
    entries: dict[str, int]  # account code -> signed amount, debit positive
    description: str | None = None


async def post_all(session: AsyncSession, postings: list[Posting]) -> set[str]:
    """Post each of `postings` once, all in two statements (their ledger transactions, then all
    their entries: a posting balances within its statement); the references posted now (not those
    posted before)."""
    created = await session.execute(
        INSERT_TRANSACTIONS,
        {"reference": [p.reference for p in postings], "description": [p.description for p in postings]},
    )
    ids = {reference: ledger_tx_id for reference, ledger_tx_id in created}
    fresh = [p for p in postings if p.reference in ids]
    if not fresh:
        return set()
    accounts = await account_ids(session, sorted({code for p in fresh for code in p.entries}))
    await insert_entries(
        session,
        [
            (ids[p.reference], accounts[code], amount, p.currency)
            for p in fresh
            for code, amount in p.entries.items()
            if amount
        ],
    )
    return set(ids)


# One statement for any number of postings or entries (and one prepared statement for every call).
INSERT_TRANSACTIONS = text(
    "INSERT INTO ledger_transactions (reference, description) "
    "SELECT * FROM unnest(CAST(:reference AS varchar[]), CAST(:description AS varchar[])) "
    "ON CONFLICT (reference) DO NOTHING RETURNING reference, id"
)
INSERT_ENTRIES = text(
    "INSERT INTO ledger_entries (ledger_transaction_id, account_id, amount, currency) "
    "SELECT * FROM unnest(CAST(:tx AS bigint[]), CAST(:account AS bigint[]), CAST(:amount AS bigint[]),"
    " CAST(:currency AS varchar[]))"
)


async def insert_entries(session: AsyncSession, entries: list[tuple[int, int, int, str]]) -> None:
    """Insert (ledger transaction id, account id, amount, currency) entries in one statement: the
    ledger's triggers check each posting in it as a whole, so a posting's entries go in together."""
    if entries:
        tx, account, amount, currency = (list(column) for column in zip(*entries, strict=True))
        await session.execute(INSERT_ENTRIES, {"tx": tx, "account": account, "amount": amount, "currency": currency})


def reversing(entries: dict[str, int]) -> dict[str, int]:
    """The posting that takes `entries` back (ledger entries are never changed)."""
    return {account: -amount for account, amount in entries.items()}


def capture_entries(merchant_id: str, amount: int, fee: int) -> dict[str, int]:
    return {STRIPE_CLEARING: amount, merchant_payable(merchant_id): -(amount - fee), PLATFORM_REVENUE: -fee}


def capture_posting(tx_id: str, merchant_id: str, currency: str, amount: int, fee: int) -> Posting:
    """A payment's capture: the charge into clearing, the merchant's share payable, our fee earned."""
    return Posting(f"capture:{tx_id}", currency, capture_entries(merchant_id, amount, fee), f"capture of {tx_id}")


def stripe_fee_entries(fee: int) -> dict[str, int]:
    """Stripe kept `fee` of a charge: the platform's expense, so what reached the balance is the net."""
    return {STRIPE_FEES: fee, STRIPE_CLEARING: -fee}


def stripe_fee_posting(tx_id: str, currency: str, fee: int) -> Posting:
    """Stripe's fee on a payment's charge, once per payment (a fee of 0 is posted too: read, none)."""
    return Posting(f"stripe_fee:{tx_id}", currency, stripe_fee_entries(fee), f"Stripe's fee on {tx_id}")


async def post_stripe_fee(session: AsyncSession, tx_id: str, currency: str, fee: int) -> bool:
    """Stripe's fee on a payment's charge, once per payment (a fee of 0 is posted too: read, none)."""
    return bool(await post_all(session, [stripe_fee_posting(tx_id, currency, fee)]))


def refunded_fee(fee: int, captured: int, refunded_before: int, refund: int) -> int:
    """The share of a capture's platform fee a refund gives back, counted on the running total so
    that refunding everything, in any number of parts, returns exactly the whole fee."""
    return fee * (refunded_before + refund) // captured - fee * refunded_before // captured


def refund_entries(merchant_id: str, amount: int, fee_returned: int) -> dict[str, int]:
    """The customer gets `amount` back; the platform returns its share of the fee, the merchant
    bears the rest (so a full refund leaves the merchant exactly where it was before the sale)."""
    return {
        merchant_payable(merchant_id): amount - fee_returned,
        PLATFORM_REVENUE: fee_returned,
        STRIPE_CLEARING: -amount,
    }


async def capture_fee(session: AsyncSession, tx_id: str) -> int:
    """The platform fee posted when the payment was captured (the fee rate may have changed since)."""
    fee = await session.execute(
        select(func.coalesce(-func.sum(LedgerEntry.amount), 0))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.ledger_transaction_id)
        .where(LedgerTransaction.reference == f"capture:{tx_id}", LedgerAccount.code == PLATFORM_REVENUE)
    )
    return int(fee.scalar_one())


def dispute_withdrawal_entries(merchant_id: str, amount: int, fee: int) -> dict[str, int]:
    """Stripe took the disputed amount and its fee from us: the merchant bears both."""
    return {merchant_payable(merchant_id): amount + fee, STRIPE_CLEARING: -(amount + fee)}


def dispute_reinstatement_entries(merchant_id: str, amount: int) -> dict[str, int]:
    """A won dispute: Stripe gives the amount back (never the fee), and so do we."""
    return {STRIPE_CLEARING: amount, merchant_payable(merchant_id): -amount}


def transfer_reversal_entries(merchant_id: str, amount: int) -> dict[str, int]:
    """Money taken back from the merchant's connected account against its deficit."""
    return {STRIPE_CLEARING: amount, merchant_payable(merchant_id): -amount}


def payout_reserve_entries(merchant_id: str, amount: int) -> dict[str, int]:
    return {merchant_payable(merchant_id): amount, PAYOUTS_IN_TRANSIT: -amount}


def payout_paid_entries(amount: int) -> dict[str, int]:
    return {PAYOUTS_IN_TRANSIT: amount, STRIPE_CLEARING: -amount}
