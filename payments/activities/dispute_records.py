"""Disputes in PostgreSQL: recorded once per Stripe dispute with `dispute.created`; each status
change recorded, with `dispute.closed` on closing. The money moves when Stripe's dispute shows it
moved: the withdrawal (amount and Stripe's fee, from its balance transaction, borne by the
merchant) and the reinstatement of a won amount, each posted once. An inquiry moves none.
(Disputes whose workflow predates that posted a fixed fee at creation, and reinstated when won.)"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from payments.activities import ledger, metrics
from payments.activities.outbox import add_event
from payments.schema.messages import DisputeRecord, DisputeStatusChange, DisputeView, StripeDispute
from payments.schema.tables import DISPUTE_CLOSED, Dispute, Transaction


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
        withdrawn=dispute.withdrawn_at is not None,
        reinstated=dispute.reinstated_at is not None,
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


async def _withdraw(session: AsyncSession, dispute: Dispute, amount: int, fee: int) -> None:
    dispute.fee, dispute.withdrawn_at = fee, datetime.now(UTC)
    await ledger.post(
        session,
        f"dispute:{dispute.id}:withdrawal",
        dispute.currency,
        ledger.dispute_withdrawal_entries(dispute.merchant_id, amount, fee),
        f"dispute {dispute.id} on {dispute.tx_id}: funds withdrawn",
    )


async def _reinstate(session: AsyncSession, dispute: Dispute, amount: int) -> None:
    dispute.reinstated_at = datetime.now(UTC)
    await ledger.post(
        session,
        f"dispute:{dispute.id}:reinstatement",
        dispute.currency,
        ledger.dispute_reinstatement_entries(dispute.merchant_id, amount),
        f"dispute {dispute.id} won",
    )


async def _follow_funds(session: AsyncSession, dispute: Dispute, stripe_dispute: StripeDispute) -> None:
    """Post what Stripe's balance transactions show it moved, once each."""
    withdrawal, reinstatement = stripe_dispute.withdrawal, stripe_dispute.reinstatement
    if withdrawal is not None and dispute.withdrawn_at is None:
        await _withdraw(session, dispute, -withdrawal.amount, withdrawal.fee)
    if reinstatement is not None and dispute.reinstated_at is None:
        await _reinstate(session, dispute, reinstatement.net)


async def _close(session: AsyncSession, dispute: Dispute, reinstate_if_won: bool) -> None:
    """A closed dispute; `reinstate_if_won` for disputes that predate following Stripe's funds: a
    won amount comes back to the merchant (the fee does not)."""
    if reinstate_if_won and dispute.status == "won":
        await _reinstate(session, dispute, dispute.amount)
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
                    fee=0 if record.funds_from_stripe else record.fee,
                    currency=stripe_dispute.currency,
                    reason=stripe_dispute.reason,
                    status=stripe_dispute.status,
                    evidence_due_by=datetime.fromtimestamp(stripe_dispute.evidence_due_by, UTC),
                    workflow_id=record.workflow_id,
                )
                .on_conflict_do_nothing(index_elements=["stripe_dispute_id"])
                .returning(Dispute.id)
            )
            dispute = await session.get(Dispute, new_id, with_for_update=True)
            assert dispute is not None
            if inserted.scalar_one_or_none() is None:
                if record.funds_from_stripe:  # a new run of an ended workflow: money Stripe moved since
                    await _follow_funds(session, dispute, stripe_dispute)
                return dispute_view(dispute)
            if record.funds_from_stripe:
                await _follow_funds(session, dispute, stripe_dispute)
            else:
                await _withdraw(session, dispute, dispute.amount, dispute.fee)
            await add_event(session, "dispute.created", dispute.id, _event_payload(dispute))
            if dispute.status in DISPUTE_CLOSED:
                await _close(session, dispute, not record.funds_from_stripe)  # heard of after Stripe decided
            await session.flush()
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
            if change.stripe is not None:
                await _follow_funds(session, dispute, change.stripe)
            if closing:
                await _close(session, dispute, change.stripe is None)
            await session.flush()
            view = dispute_view(dispute)
        if closing:
            metrics.DISPUTES.labels(change.status).inc()
        return view
