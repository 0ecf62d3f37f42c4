"""Refunds: reserve under the payment's row lock (so racing refunds never exceed the captured
amount), refund at Stripe with the refund id as idempotency key, then record it with its ledger
posting. A refund is never refused for the merchant's balance: its payable may go negative (a
refund after a payout), and later captures or a transfer reversal make it good."""

from __future__ import annotations

import stripe
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import ledger, metrics
from activities.heartbeat import heartbeating
from activities.outbox import add_event
from activities.payment_records import event_payload, locked_transaction
from activities.stripe_errors import final_or_transient
from schema.messages import RefundFailure, RefundRequest, RefundView, StripeRefund
from schema.tables import Refund, Transaction

REFUNDABLE = ("confirmed", "partially_refunded")


def refund_view(refund: Refund, tx: Transaction) -> RefundView:
    return RefundView(
        refund_id=refund.id,
        tx_id=refund.tx_id,
        amount=refund.amount,
        currency=refund.currency,
        status=refund.status,
        reason=refund.reason,
        payment_intent_id=tx.stripe_payment_intent_id or "",
        failure_code=refund.failure_code,
        payment_status=tx.status,
    )


async def _reserved(session: AsyncSession, tx_id: str) -> int:
    """Refunded already, plus refunds still in flight."""
    pending = await session.execute(
        select(func.coalesce(func.sum(Refund.amount), 0)).where(Refund.tx_id == tx_id, Refund.status == "pending")
    )
    return int(pending.scalar_one())


class RefundRecords:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn
    async def reserve_refund(self, request: RefundRequest) -> RefundView:
        async with self._sessions.begin() as session:
            tx = await locked_transaction(session, request.tx_id)  # serializes refunds of one payment
            existing = await session.get(Refund, request.refund_id)
            if existing is not None:
                return refund_view(existing, tx)
            if tx.status not in REFUNDABLE:
                raise ApplicationError(
                    f"A {tx.status} payment cannot be refunded.",
                    {"status": tx.status},
                    type="PaymentNotRefundable",
                    non_retryable=True,
                )
            in_flight = await _reserved(session, tx.id)
            refundable = tx.amount_captured - tx.amount_refunded - in_flight
            amount = request.amount if request.amount is not None else refundable
            if amount <= 0 or amount > refundable:
                raise ApplicationError(
                    f"The refund of {amount} exceeds the refundable {refundable}.",
                    {"refundable": refundable},
                    type="RefundExceedsCaptured",
                    non_retryable=True,
                )
            refund = Refund(
                id=request.refund_id,
                tx_id=tx.id,
                amount=amount,
                currency=tx.currency,
                status="pending",
                reason=request.reason,
                idempotency_key=request.idempotency_key,
            )
            session.add(refund)
            await session.flush()
            return refund_view(refund, tx)

    @activity.defn
    async def record_refund(self, refunded: StripeRefund) -> RefundView:
        async with self._sessions.begin() as session:
            refund = await session.get(Refund, refunded.refund_id, with_for_update=True)
            assert refund is not None
            tx = await locked_transaction(session, refund.tx_id)
            if refund.status == "succeeded":
                return refund_view(refund, tx)
            refund.status, refund.stripe_refund_id = "succeeded", refunded.stripe_refund_id
            fee = await ledger.capture_fee(session, tx.id)
            fee_returned = ledger.refunded_fee(fee, tx.amount_captured, tx.amount_refunded, refund.amount)
            tx.amount_refunded += refund.amount
            tx.status = "refunded" if tx.amount_refunded == tx.amount_captured else "partially_refunded"
            await ledger.post(
                session,
                f"refund:{refund.id}",
                tx.currency,
                ledger.refund_entries(tx.merchant_id, refund.amount, fee_returned),
                f"refund of {tx.id}",
            )
            await add_event(
                session,
                "refund.succeeded",
                refund.id,
                {"refund_id": refund.id, "amount": refund.amount, **event_payload(tx)},
            )
            view = refund_view(refund, tx)
        metrics.REFUNDS.labels("succeeded").inc()
        return view

    @activity.defn
    async def fail_refund(self, failed: RefundFailure) -> RefundView:
        """Compensation: Stripe refused, so the reserved amount is released."""
        async with self._sessions.begin() as session:
            refund = await session.get(Refund, failed.refund_id, with_for_update=True)
            assert refund is not None
            released = refund.status == "pending"
            if released:
                refund.status, refund.failure_code = "failed", failed.failure_code
            tx = await session.get(Transaction, refund.tx_id)
            assert tx is not None
            view = refund_view(refund, tx)
        if released:
            metrics.REFUNDS.labels("failed").inc()
        return view


class StripeRefunds:
    def __init__(self, client: stripe.StripeClient) -> None:
        self._stripe = client

    @activity.defn
    async def refund_at_stripe(self, refund: RefundView) -> StripeRefund:
        try:
            created = await heartbeating(
                self._stripe.v1.refunds.create_async(
                    params={
                        "payment_intent": refund.payment_intent_id,
                        "amount": refund.amount,
                        "metadata": {"refund_id": refund.refund_id, "tx_id": refund.tx_id},
                    },
                    options={"idempotency_key": refund.refund_id},
                )
            )
        except stripe.StripeError as exc:
            raise final_or_transient(exc) from exc
        return StripeRefund(refund.refund_id, created.id)
