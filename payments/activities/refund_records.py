"""Refunds in PostgreSQL: reserve under the payment's row lock (so racing refunds never exceed the
captured amount), then record Stripe's word on each one: posted when Stripe accepts it, announced
when it succeeds, reversed if it fails later. A refund is never refused for the merchant's
balance: its payable may go negative (a refund after a payout), and later captures or a transfer
reversal make it good."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from payments.activities import ledger, metrics
from payments.activities.outbox import add_event
from payments.activities.payment_records import event_payload, locked_transaction
from payments.schema.messages import RefundFailure, RefundRequest, RefundView, StripeRefund
from payments.schema.tables import Refund, Transaction

REFUNDABLE = ("confirmed", "partially_refunded")
FAILED_AT_STRIPE = ("failed", "canceled")


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
        stripe_refund_id=refund.stripe_refund_id,
    )


async def _reserved(session: AsyncSession, tx_id: str) -> int:
    """Refunds still on their way to Stripe (those it accepted are in `amount_refunded`)."""
    pending = await session.execute(
        select(func.coalesce(func.sum(Refund.amount), 0)).where(
            Refund.tx_id == tx_id, Refund.status == "pending", Refund.stripe_refund_id.is_(None)
        )
    )
    return int(pending.scalar_one())


def _counted(refund: Refund) -> bool:
    """Posted and in the payment's `amount_refunded`: from Stripe's acceptance until it fails.
    Stripe takes a refund's money from the balance when it accepts it, pending or not (and gives
    it back if the refund fails), so the books follow the balance: the merchant can never be paid
    out what Stripe has already sent back to the card."""
    return refund.stripe_refund_id is not None and refund.status in ("pending", "succeeded")


def _refunded_status(tx: Transaction) -> str:
    if tx.amount_refunded == 0:
        return "confirmed"
    return "refunded" if tx.amount_refunded == tx.amount_captured else "partially_refunded"


async def _post(session: AsyncSession, refund: Refund, tx: Transaction) -> None:
    fee = await ledger.capture_fee(session, tx.id)
    fee_returned = ledger.refunded_fee(fee, tx.amount_captured, tx.amount_refunded, refund.amount)
    tx.amount_refunded += refund.amount
    tx.status = _refunded_status(tx)
    entries = ledger.refund_entries(tx.merchant_id, refund.amount, fee_returned)
    await ledger.post(session, f"refund:{refund.id}", tx.currency, entries, f"refund of {tx.id}")


async def _reverse(session: AsyncSession, refund: Refund, tx: Transaction) -> None:
    """A new posting that takes the refund back. Its fee share is counted on the running total,
    as the refunds' are, so the fee given back always matches what is still refunded."""
    fee = await ledger.capture_fee(session, tx.id)
    tx.amount_refunded -= refund.amount
    fee_back = ledger.refunded_fee(fee, tx.amount_captured, tx.amount_refunded, refund.amount)
    tx.status = _refunded_status(tx)
    entries = ledger.refund_entries(tx.merchant_id, refund.amount, fee_back)
    await ledger.post(
        session,
        f"refund:{refund.id}:reversal",
        tx.currency,
        ledger.reversing(entries),
        f"refund of {tx.id} failed at Stripe",
    )


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
        """Follow Stripe's word on the refund, once per change: accepted (pending or succeeded)
        posts it and counts it on the payment, succeeded announces it, failed or canceled at Stripe
        (even after it succeeded: card networks return refunds) reverses what was posted."""
        async with self._sessions.begin() as session:
            refund = await session.get(Refund, refunded.refund_id, with_for_update=True)
            assert refund is not None
            tx = await locked_transaction(session, refund.tx_id)
            outcome: str | None = None
            returned = refunded.status in FAILED_AT_STRIPE and refund.status == "succeeded"  # Stripe ahead
            if refunded.status in FAILED_AT_STRIPE and refund.status != "failed":
                if _counted(refund):
                    await _reverse(session, refund, tx)
                refund.status, outcome = "failed", "failed"
                refund.failure_code = refunded.failure_reason or refunded.status
                refund.stripe_refund_id = refund.stripe_refund_id or refunded.stripe_refund_id
            elif refunded.status not in FAILED_AT_STRIPE and refund.status == "pending":
                if not _counted(refund):
                    refund.stripe_refund_id = refunded.stripe_refund_id
                    await _post(session, refund, tx)
                if refunded.status == "succeeded":
                    refund.status, outcome = "succeeded", "succeeded"
            if outcome is not None:
                payload = {"refund_id": refund.id, "amount": refund.amount, "failure_code": refund.failure_code}
                await add_event(session, f"refund.{outcome}", refund.id, payload | event_payload(tx))
            await session.flush()
            view = refund_view(refund, tx)
        if outcome is not None:
            metrics.REFUNDS.labels(outcome).inc()
        if returned:
            metrics.STRIPE_AHEAD.labels("refund").inc()
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
