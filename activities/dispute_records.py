"""Disputes in PostgreSQL: recorded once per Stripe dispute with the withdrawal posted (amount and
fee borne by the merchant) and `dispute.created` in the same transaction; each status change
recorded with, on closing, the reinstatement of a won amount and `dispute.closed`."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities import ledger, metrics
from activities.outbox import add_event
from schema.messages import DisputeRecord, DisputeStatusChange, DisputeView
from schema.tables import DISPUTE_CLOSED, Dispute, Transaction


def dispute_id(stripe_dispute_id: str) -> str:
    """Ours, derived from Stripe's: a retried record converges on one row."""
    return "dsp_" + hashlib.sha256(stripe_dispute_id.encode()).hexdigest()[:32]


def dispute_view(dispute: Dispute) -> DisputeView:
    return DisputeView(
        dispute_id=dispute.id,
        stripe_dispute_id=dispute.stripe_dispute_id,
        tx_id=dispute.tx_id,
        merchant_id=dispute.merchant_id,
        amount=dispute.amount,
        fee=dispute.fee,
        currency=dispute.currency,
        reason=dispute.reason,
        status=dispute.status,
        evidence_due_by=int(dispute.evidence_due_by.timestamp()),
        evidence_text=dispute.evidence_text,
    )


def _event_payload(dispute: Dispute) -> dict[str, Any]:
    return {
        "dispute_id": dispute.id,
        "stripe_dispute_id": dispute.stripe_dispute_id,
        "tx_id": dispute.tx_id,
        "merchant_id": dispute.merchant_id,
        "amount": dispute.amount,
        "fee": dispute.fee,
        "currency": dispute.currency,
        "reason": dispute.reason,
        "status": dispute.status,
    }


async def _close(session: AsyncSession, dispute: Dispute) -> None:
    """A closed dispute: a won amount comes back to the merchant (the fee does not)."""
    if dispute.status == "won":
        await ledger.post(
            session,
            f"dispute:{dispute.id}:reinstatement",
            dispute.currency,
            ledger.dispute_reinstatement_entries(dispute.merchant_id, dispute.amount),
            f"dispute {dispute.id} won",
        )
    await add_event(session, "dispute.closed", dispute.id, _event_payload(dispute))


class DisputeRecords:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn
    async def record_dispute(self, record: DisputeRecord) -> DisputeView | None:
        """None when the disputed payment is not ours (reconciliation reports such disputes)."""
        stripe_dispute = record.dispute
        async with self._sessions.begin() as session:
            tx = (
                await session.execute(
                    select(Transaction).where(Transaction.stripe_payment_intent_id == stripe_dispute.payment_intent_id)
                )
            ).scalar_one_or_none()
            if tx is None or stripe_dispute.payment_intent_id is None:
                return None
            new_id = dispute_id(stripe_dispute.stripe_dispute_id)
            inserted = await session.execute(
                insert(Dispute)
                .values(
                    id=new_id,
                    stripe_dispute_id=stripe_dispute.stripe_dispute_id,
                    tx_id=tx.id,
                    merchant_id=tx.merchant_id,
                    amount=stripe_dispute.amount,
                    fee=record.fee,
                    currency=stripe_dispute.currency,
                    reason=stripe_dispute.reason,
                    status=stripe_dispute.status,
                    evidence_due_by=datetime.fromtimestamp(stripe_dispute.evidence_due_by, UTC),
                    workflow_id=record.workflow_id,
                )
                .on_conflict_do_nothing(index_elements=["stripe_dispute_id"])
                .returning(Dispute.id)
            )
            dispute = await session.get(Dispute, new_id)
            assert dispute is not None
            if inserted.scalar_one_or_none() is None:
                return dispute_view(dispute)
            await ledger.post(
                session,
                f"dispute:{dispute.id}:withdrawal",
                dispute.currency,
                ledger.dispute_withdrawal_entries(dispute.merchant_id, dispute.amount, dispute.fee),
                f"dispute {dispute.id} on {tx.id}: funds withdrawn",
            )
            await add_event(session, "dispute.created", dispute.id, _event_payload(dispute))
            if dispute.status in DISPUTE_CLOSED:
                await _close(session, dispute)  # first heard of after Stripe had decided
            view = dispute_view(dispute)
        metrics.DISPUTES.labels("created").inc()
        return view

    @activity.defn
    async def record_dispute_status(self, change: DisputeStatusChange) -> DisputeView:
        async with self._sessions.begin() as session:
            dispute = await session.get(Dispute, change.dispute_id, with_for_update=True)
            assert dispute is not None
            if change.evidence_text is not None:
                dispute.evidence_text = change.evidence_text
            closing = dispute.status not in DISPUTE_CLOSED and change.status in DISPUTE_CLOSED
            if dispute.status not in DISPUTE_CLOSED:
                dispute.status = change.status
            if closing:
                await _close(session, dispute)
            await session.flush()
            view = dispute_view(dispute)
        if closing:
            metrics.DISPUTES.labels(change.status).inc()
        return view
