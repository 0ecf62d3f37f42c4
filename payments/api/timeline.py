"""A payment's whole story in time order, for an operator answering "what happened to it":
status changes and outbox events (our tables) of the payment, its refunds and its disputes, ledger
postings, merchant webhook deliveries of those events, and Stripe's PaymentIntent.

The paying user sees their payment's story (status, events, Stripe's word), not the platform's
books: no ledger postings (even without the fee account, the merchant's share gives the fee away by
difference) and no webhook deliveries. The merchant sees its postings whole, the platform fee
included: the fee is the merchant's own cost, on its contract and statements. Stripe's PaymentIntent
is read at most once per payment every few seconds (cached in Redis), so a caller polling the
timeline does not turn into a stream of Stripe requests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import stripe
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from payments.schema.tables import (
    Dispute,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    OutboxEvent,
    Refund,
    Transaction,
    WebhookDelivery,
)
from payments.schema.transaction_rows import PaymentRow

log = structlog.get_logger(__name__)
DISPUTE_POSTINGS = ("withdrawal", "reinstatement")  # the ledger references a dispute posts under
STRIPE_CACHE_SECONDS = 10  # how stale Stripe's side of a timeline may be


async def _events(session: AsyncSession, tx: Transaction | PaymentRow, related_ids: list[str]) -> list[dict[str, Any]]:
    """Each outbox event of the payment, its refunds and disputes, and the payment's status changes
    they carry (every payment and refund event holds the payment's status after it)."""
    rows = await session.scalars(
        select(OutboxEvent)
        .where(or_(OutboxEvent.aggregate_id == tx.id, OutboxEvent.aggregate_id.in_(related_ids)))
        .order_by(OutboxEvent.id)
    )
    entries: list[dict[str, Any]] = [{"at": tx.created_at, "kind": "status", "status": "pending"}]
    status = "pending"
    for event in rows:
        if event.payload.get("tx_id") == tx.id and event.payload.get("status") not in (None, status):
            status = event.payload["status"]
            entries.append({"at": event.created_at, "kind": "status", "status": status})
        entries.append(
            {
                "at": event.created_at,
                "kind": "event",
                "type": event.type,
                "event_id": str(event.id),
                "published_at": event.published_at,
            }
        )
    return entries


async def _postings(
    session: AsyncSession, tx: Transaction | PaymentRow, refund_ids: list[str], dispute_ids: list[str]
) -> list[dict[str, Any]]:
    references = [f"capture:{tx.id}"] + [f"refund:{refund_id}" for refund_id in refund_ids]
    references += [f"dispute:{dispute_id}:{step}" for dispute_id in dispute_ids for step in DISPUTE_POSTINGS]
    rows = await session.execute(
        select(LedgerTransaction, LedgerEntry.amount, LedgerEntry.currency, LedgerAccount.code)
        .join(LedgerEntry, LedgerEntry.ledger_transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerTransaction.reference.in_(references))
        .order_by(LedgerTransaction.id, LedgerEntry.id)
    )
    postings: dict[int, dict[str, Any]] = {}
    for posting, amount, currency, account in rows:
        entry = postings.setdefault(
            posting.id, {"at": posting.created_at, "kind": "ledger", "reference": posting.reference, "entries": []}
        )
        entry["entries"].append({"account": account, "amount": amount, "currency": currency})
    return list(postings.values())


async def _deliveries(session: AsyncSession, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    event_ids = [int(entry["event_id"]) for entry in events if entry["kind"] == "event"]
    rows = await session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.event_id.in_(event_ids))
        .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
    )
    return [
        {
            "at": delivery.created_at,
            "kind": "delivery",
            "delivery_id": delivery.id,
            "event_id": str(delivery.event_id),
            "endpoint_id": delivery.endpoint_id,
            "status": delivery.status,
            "attempts": delivery.attempts,
            "last_status_code": delivery.last_status_code,
        }
        for delivery in rows
    ]


async def _stripe_intent(client: stripe.StripeClient, tx: Transaction | PaymentRow) -> list[dict[str, Any]]:
    try:
        intent = await client.v1.payment_intents.retrieve_async(tx.stripe_payment_intent_id or "")
    except stripe.StripeError as exc:
        log.warning("timeline_stripe_unavailable", tx_id=tx.id, error=type(exc).__name__)
        return []
    return [
        {
            "at": datetime.fromtimestamp(intent.created, UTC).isoformat(),
            "kind": "stripe",
            "object": "payment_intent",
            "id": intent.id,
            "status": intent.status,
            "amount": intent.amount,
            "amount_received": intent.amount_received,
            "currency": intent.currency,
        }
    ]


async def _stripe(
    client: stripe.StripeClient, cache: Redis | None, tx: Transaction | PaymentRow
) -> list[dict[str, Any]]:
    """Stripe's PaymentIntent, from the cache when read in the last few seconds (no secret in it)."""
    if not tx.stripe_payment_intent_id:
        return []
    key = f"timeline:stripe:{tx.id}"
    try:
        cached = await cache.get(key) if cache is not None else None
    except RedisError as exc:
        log.warning("timeline_cache_unavailable", error=type(exc).__name__)
        cached = None
    if cached is not None:
        entries: list[dict[str, Any]] = json.loads(cached)
    else:
        entries = await _stripe_intent(client, tx)
        if entries and cache is not None:
            try:
                await cache.set(key, json.dumps(entries), ex=STRIPE_CACHE_SECONDS)
            except RedisError as exc:
                log.warning("timeline_cache_unavailable", error=type(exc).__name__)
    return [entry | {"at": datetime.fromisoformat(entry["at"])} for entry in entries]


async def payment_timeline(
    session: AsyncSession,
    client: stripe.StripeClient,
    tx: Transaction | PaymentRow,
    payer: bool = False,
    cache: Redis | None = None,
) -> dict[str, Any]:
    """`payer`: the paying user's view (no ledger postings, no webhook deliveries); `cache`: where
    Stripe's answer is kept for a few seconds."""
    refund_ids = list(await session.scalars(select(Refund.id).where(Refund.tx_id == tx.id)))
    dispute_ids = list(await session.scalars(select(Dispute.id).where(Dispute.tx_id == tx.id)))
    events = await _events(session, tx, refund_ids + dispute_ids)
    data = events + await _stripe(client, cache, tx)
    if not payer:
        data += await _postings(session, tx, refund_ids, dispute_ids) + await _deliveries(session, events)
    data.sort(key=lambda entry: entry["at"])  # stable: within one instant, our order is kept
    return {"tx_id": tx.id, "workflow_id": tx.workflow_id, "data": data}
