"""The money of a throwaway stack, read across PostgreSQL, Stripe (the emulator) and Redis: every
PaymentIntent, refund and transfer matches our rows, the ledger balances and says what each merchant
is owed, every change was announced. Each check returns its figures and its violations. The chaos
run and the batch benches both end on these."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import stripe as stripe_sdk
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from devstack.throwaway import Stack
from payments.activities.ledger import platform_fee, refunded_fee
from payments.schema.balances import merchant_payable
from payments.schema.tables import (
    LedgerAccount,
    LedgerEntry,
    Merchant,
    OutboxEvent,
    PayableBalance,
    Payout,
    ReconciliationLog,
    Refund,
    Transaction,
)
from payments.workers.outbox_relay import STREAM

# The events a payment's history announces, by the status it ends in.
PAYMENT_EVENTS = {
    "failed": ("payment.failed",),
    "authorized": ("payment.authorized",),
    "canceled": ("payment.authorized", "payment.canceled"),
    "confirmed": ("payment.authorized", "payment.confirmed"),
    "partially_refunded": ("payment.authorized", "payment.confirmed"),
    "refunded": ("payment.authorized", "payment.confirmed"),
}


# A declined payment's ends that follow its last decline, each card's decline an event of its own.
GIVEN_UP = ("requested_by_customer", "payment_expired", "abandoned_after_decline")


def declines(tx: Transaction) -> int:
    """The payment.declined events a payment has: one per card declined while another could be
    tried (the last card's decline, when no other may follow, is its payment.failed)."""
    if tx.status == "declined" or (tx.status == "failed" and tx.failure_code in GIVEN_UP):
        return int(tx.card_attempts)
    return int(tx.card_attempts) - 1


@dataclass
class Check:
    name: str
    figures: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StripeState:
    """What the emulator holds, listed through the official SDK, plus its capture counters."""

    intents: list[dict[str, Any]]
    refunds: list[dict[str, Any]]
    transfers: list[dict[str, Any]]
    captures: dict[str, int]  # PaymentIntent id -> captures performed


async def all_rows(session: AsyncSession, table: type[Any]) -> list[Any]:
    return list((await session.scalars(select(table))).all())


def stripe_state(stack: Stack) -> StripeState:
    client = stripe_sdk.StripeClient("sk_test_emulator", base_addresses={"api": stack.stripe_api_base()})
    counters = httpx.get(f"{stack.stripe_api_base()}/_emulator/counters", timeout=30).json()
    return StripeState(
        intents=[i.to_dict() for i in client.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()],
        refunds=[r.to_dict() for r in client.v1.refunds.list(params={"limit": 100}).auto_paging_iter()],
        transfers=[t.to_dict() for t in client.v1.transfers.list(params={"limit": 100}).auto_paging_iter()],
        captures=counters.get("payment_intents.capture", {}),
    )


def payment_intents(txs: dict[str, Transaction], stripe: StripeState) -> Check:
    by_tx: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for intent in stripe.intents:
        by_tx[intent["metadata"].get("tx_id", "")].append(intent)
    captures = sum(stripe.captures.get(i["id"], 0) for i in stripe.intents)
    check = Check("payment intents", {"PaymentIntents": len(stripe.intents), "captures": captures})
    for tx in txs.values():
        intents = by_tx.get(tx.id, [])
        if not intents and tx.status == "failed" and tx.stripe_payment_intent_id is None:
            continue  # failed before it reached Stripe (its workflow lost with Temporal's database)
        if len(intents) != 1:
            check.violations.append(f"{tx.id} ({tx.status}): {len(intents)} PaymentIntents")
            continue
        intent = intents[0]
        if stripe.captures.get(intent["id"], 0) > 1:
            check.violations.append(f"{tx.id}: {stripe.captures[intent['id']]} captures of {intent['id']}")
        if tx.stripe_payment_intent_id not in (None, intent["id"]):
            check.violations.append(f"{tx.id}: row names {tx.stripe_payment_intent_id}, Stripe has {intent['id']}")
        if (intent["amount"], intent["amount_received"]) != (tx.amount, tx.amount_captured):
            check.violations.append(
                f"{tx.id}: Stripe amount/received {intent['amount']}/{intent['amount_received']}, "
                f"ours {tx.amount}/{tx.amount_captured}"
            )
    orphans = [i["id"] for tx_id, intents in by_tx.items() if tx_id not in txs for i in intents]
    check.figures["orphans"] = len(orphans)
    check.violations += [f"orphan PaymentIntent {intent_id}" for intent_id in orphans]
    return check


def refunds(txs: dict[str, Transaction], stripe: StripeState) -> Check:
    tx_of_intent = {i["id"]: i["metadata"].get("tx_id", "") for i in stripe.intents}
    refunded: Counter[str] = Counter()
    for refund in stripe.refunds:
        if refund["status"] == "succeeded":
            refunded[tx_of_intent.get(refund["payment_intent"], refund["payment_intent"])] += refund["amount"]
    check = Check("refunds", {"Stripe refunds": len(stripe.refunds), "amount refunded": sum(refunded.values())})
    for tx_id, amount in refunded.items():
        tx = txs.get(tx_id)
        if tx is None:
            check.violations.append(f"{amount} refunded at Stripe for {tx_id}, which is not ours")
        elif amount > tx.amount_captured:
            check.violations.append(f"{tx_id}: {amount} refunded at Stripe, above {tx.amount_captured} captured")
    for tx in txs.values():
        if refunded[tx.id] != tx.amount_refunded:
            check.violations.append(f"{tx.id}: Stripe refunded {refunded[tx.id]}, amount_refunded {tx.amount_refunded}")
    return check


def payout_transfers(payouts: list[Payout], stripe: StripeState) -> Check:
    """Each paid payout made exactly one transfer of its amount, and no transfer names another."""
    by_payout: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for transfer in stripe.transfers:
        by_payout[transfer["metadata"].get("payout_id", "")].append(transfer)
    statuses = Counter(p.status for p in payouts)
    check = Check("payouts", {f"payouts {s}": n for s, n in sorted(statuses.items())})
    check.figures["transfers"] = len(stripe.transfers)
    rows = {p.id for p in payouts}
    for payout in payouts:
        made = by_payout.get(payout.id, [])
        wanted = 1 if payout.status == "paid" else 0
        if len(made) != wanted or any(t["amount"] != payout.amount for t in made):
            check.violations.append(f"{payout.id} ({payout.status}, {payout.amount}): transfers {made}")
    check.violations += [f"{n} transfers for unknown payout {pid!r}" for pid, n in by_payout.items() if pid not in rows]
    return check


async def ledger(session: AsyncSession, txs: dict[str, Transaction], payouts: list[Payout]) -> Check:
    entries = select(LedgerEntry.ledger_transaction_id, LedgerEntry.currency, func.sum(LedgerEntry.amount))
    unbalanced = (
        await session.execute(
            entries.group_by(LedgerEntry.ledger_transaction_id, LedgerEntry.currency).having(
                func.sum(LedgerEntry.amount) != 0
            )
        )
    ).all()
    postings = await session.scalar(select(func.count(func.distinct(LedgerEntry.ledger_transaction_id))))
    check = Check("ledger", {"ledger transactions": postings or 0, "unbalanced": len(unbalanced)})
    check.violations += [f"ledger transaction {t} sums to {s} {c}" for t, c, s in unbalanced]
    balances = dict(
        (
            await session.execute(
                select(LedgerAccount.code, func.sum(LedgerEntry.amount))
                .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
                .group_by(LedgerAccount.code)
            )
        ).all()
    )
    merchants = await all_rows(session, Merchant)
    fee_bps = {m.id: m.fee_bps for m in merchants}
    expected: Counter[str] = Counter()
    for tx in txs.values():
        if tx.amount_captured:
            fee = platform_fee(tx.amount_captured, fee_bps[tx.merchant_id])
            returned = refunded_fee(fee, tx.amount_captured, 0, tx.amount_refunded)
            expected[tx.merchant_id] += tx.amount_captured - fee - tx.amount_refunded + returned
    for payout in payouts:
        if payout.status != "failed":
            expected[payout.merchant_id] -= payout.amount
    for merchant in merchants:
        payable = -(balances.get(merchant_payable(merchant.id)) or 0)
        if payable != expected[merchant.id]:
            check.violations.append(
                f"{merchant.id}: payable {payable}, captures - fees - refunds - payouts = {expected[merchant.id]}"
            )
    check.figures["merchants"] = len(merchants)
    check.violations += await _kept_balances(session)
    return check


async def _kept_balances(session: AsyncSession) -> list[str]:
    """Every merchant payable's kept balance (payable_balances) equals the sum of its entries."""
    sums = (
        select(LedgerEntry.account_id, LedgerEntry.currency, func.sum(LedgerEntry.amount).label("total"))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.code.like("merchant_payable:%"))
        .group_by(LedgerEntry.account_id, LedgerEntry.currency)
    )
    entries = {(a, c): int(total) for a, c, total in (await session.execute(sums)).all()}
    kept = {
        (a, c): b
        for a, c, b in (
            await session.execute(select(PayableBalance.account_id, PayableBalance.currency, PayableBalance.balance))
        ).all()
    }
    return [
        f"ledger account {a} ({c}): kept balance {kept.get((a, c))}, entries sum to {entries.get((a, c))}"
        for a, c in sorted(entries.keys() | kept.keys())
        if kept.get((a, c)) != entries.get((a, c))
    ]


async def events(session: AsyncSession, redis: Redis, txs: dict[str, Transaction], payouts: list[Payout]) -> Check:
    rows = await all_rows(session, OutboxEvent)
    published: Counter[str] = Counter()
    for _, fields in await redis.xrange(STREAM) or []:
        published[fields[b"event_id"].decode()] += 1  # type: ignore[index, union-attr]
    check = Check("events", {"outbox events": len(rows), "stream entries": sum(published.values())})
    for row in rows:
        if published[str(row.id)] != 1:
            check.violations.append(
                f"event {row.id} ({row.type} {row.aggregate_id}) published {published[str(row.id)]}x"
            )
    known = {str(row.id) for row in rows}
    check.violations += [
        f"stream entry for unknown event {event_id}" for event_id in published if event_id not in known
    ]
    seen: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        seen[row.aggregate_id][row.type] += 1
    wanted: dict[str, Counter[str]] = {
        tx.id: Counter(PAYMENT_EVENTS.get(tx.status, ())) + Counter({"payment.declined": declines(tx)})
        for tx in txs.values()
    }
    wanted |= {p.id: Counter({f"payout.{p.status}": 1} if p.status in ("paid", "failed") else {}) for p in payouts}
    wanted |= {
        r.id: Counter({"refund.succeeded": 1}) for r in await all_rows(session, Refund) if r.status == "succeeded"
    }
    for log in await all_rows(session, ReconciliationLog):  # each entry logged is announced once
        wanted.setdefault(log.subject, Counter())["reconciliation.discrepancy"] += 1
    for aggregate in wanted.keys() | seen.keys():
        if seen[aggregate] != wanted.get(aggregate, Counter()):
            check.violations.append(
                f"{aggregate}: events {dict(seen[aggregate])}, want {dict(wanted.get(aggregate, {}))}"
            )
    return check
