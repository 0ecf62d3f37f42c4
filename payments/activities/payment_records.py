"""PostgreSQL side of a payment: the transaction row, its status changes and the capture posting,
each in one database transaction with its outbox event (and ledger entries for the capture)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from payments.activities import ledger, metrics
from payments.activities.outbox import add_event
from payments.config.keyring import Keyring
from payments.schema.messages import CaptureRequest, PaymentRequest, PaymentView, StatusChange, StripeAhead
from payments.schema.tables import OPEN_PAYMENT_STATUSES, Merchant, Transaction


def view_of(tx: Transaction, replayed: bool = False) -> PaymentView:
    return PaymentView(
        tx_id=tx.id,
        user_id=tx.user_id,
        merchant_id=tx.merchant_id,
        amount=tx.amount,
        amount_captured=tx.amount_captured,
        amount_refunded=tx.amount_refunded,
        currency=tx.currency,
        status=tx.status,
        idempotency_key=tx.idempotency_key,
        card_brand=tx.card_brand,
        card_last4=tx.card_last4,
        failure_code=tx.failure_code,
        failure_message=tx.failure_message,
        card_attempts=tx.card_attempts,
        replayed=replayed,
    )


def event_payload(tx: Transaction) -> dict[str, Any]:
    """What consumers of payments.events see: ids, amounts and status; never card data."""
    return {
        "tx_id": tx.id,
        "user_id": tx.user_id,
        "merchant_id": tx.merchant_id,
        "status": tx.status,
        "amount": tx.amount,
        "amount_captured": tx.amount_captured,
        "amount_refunded": tx.amount_refunded,
        "currency": tx.currency,
    }


async def locked_transaction(session: AsyncSession, tx_id: str) -> Transaction:
    tx = await session.get(Transaction, tx_id, with_for_update=True)
    if tx is None:
        raise LookupError(f"transaction {tx_id} does not exist")
    return tx


class PaymentRecords:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], keyring: Keyring) -> None:
        self._sessions = sessions
        self._keyring = keyring

    @activity.defn
    async def record_payment(self, request: PaymentRequest) -> PaymentView:
        """Insert the pending transaction, or return the one that already holds this key:
        UNIQUE(user_id, idempotency_key) is the durable guard once a workflow has left Temporal."""
        sealed = self._keyring.seal(request.card_token.encode(), request.tx_id.encode())
        async with self._sessions.begin() as session:
            inserted = await session.scalars(
                insert(Transaction)
                .values(
                    id=request.tx_id,
                    user_id=request.user_id,
                    merchant_id=request.merchant_id,
                    amount=request.amount,
                    currency=request.currency,
                    status="pending",
                    idempotency_key=request.idempotency_key,
                    request_fingerprint=request.fingerprint,
                    card_token=sealed.blob,
                    card_token_key_id=sealed.key_id,
                    workflow_id=activity.info().workflow_id,
                )
                .on_conflict_do_nothing(index_elements=["user_id", "idempotency_key"])
                .returning(Transaction)
            )
            tx = inserted.one_or_none()
            if tx is None:  # the key's row was there already: read it (a retry, or a repeat of the key)
                tx = (
                    await session.scalars(
                        select(Transaction).where(
                            Transaction.user_id == request.user_id,
                            Transaction.idempotency_key == request.idempotency_key,
                        )
                    )
                ).one()
            return view_of(tx)

    @activity.defn
    async def record_status(self, change: StatusChange) -> PaymentView:
        async with self._sessions.begin() as session:
            tx = await locked_transaction(session, change.tx_id)
            changed = tx.status != change.status
            tx.status = change.status
            if change.status in ("requires_action", "authorized"):  # another card after a decline
                tx.failure_code = tx.failure_message = None
            for field in ("card_brand", "card_last4", "failure_code", "failure_message"):
                if getattr(change, field) is not None:
                    setattr(tx, field, getattr(change, field))
            if change.card_attempts is not None:
                tx.card_attempts = change.card_attempts
            if change.payment_intent_id:
                tx.stripe_payment_intent_id = change.payment_intent_id
            if change.event_type:
                # One decline per card tried: each is its own event.
                occurrence = f"card-{tx.card_attempts}" if change.status == "declined" else ""
                await add_event(session, change.event_type, tx.id, event_payload(tx), occurrence)
            view = view_of(tx)
        if changed:
            metrics.PAYMENTS.labels(change.status, change.failure_code or "").inc()
        return view

    @activity.defn
    async def record_capture(self, capture: CaptureRequest) -> PaymentView:
        """Confirmed: the captured amount, the ledger posting and the event, all or nothing. Also
        for a payment recorded canceled or failed that Stripe captured (reconciliation follows it)."""
        async with self._sessions.begin() as session:
            tx = await locked_transaction(session, capture.tx_id)
            posted = tx.amount_captured == 0  # else a retried activity: already recorded
            if posted:
                await _post_capture(session, tx, capture.amount)
                if capture.stripe_fee is not None:
                    await ledger.post_stripe_fee(session, tx.id, tx.currency, capture.stripe_fee)
            view = view_of(tx)
        if posted:
            metrics.CAPTURES.labels(view.currency).inc()
        return view

    @activity.defn
    async def follow_stripe(self, ahead: StripeAhead) -> PaymentView:
        """Record what Stripe holds where our row is behind it: a capture our books never heard of
        (whatever the row says, even canceled or failed: the customer was charged), or a void of a
        payment still open here. Anything else leaves the row as it is."""
        intent = ahead.intent
        async with self._sessions.begin() as session:
            tx = await locked_transaction(session, ahead.tx_id)
            found = None
            if tx.stripe_payment_intent_id not in (None, intent.payment_intent_id):
                pass  # another PaymentIntent naming this payment: reconciliation flags it, nothing moves here
            elif intent.status == "succeeded" and tx.amount_captured == 0:
                tx.stripe_payment_intent_id = tx.stripe_payment_intent_id or intent.payment_intent_id
                await _post_capture(session, tx, intent.amount_received)
                found = "captured"
            elif intent.status == "canceled" and tx.status in OPEN_PAYMENT_STATUSES:
                tx.status = "canceled"
                tx.failure_code = ahead.failure_code or "canceled_at_stripe"
                tx.failure_message = ahead.failure_message
                await add_event(session, "payment.canceled", tx.id, event_payload(tx))
                found = "canceled"
            view = view_of(tx)
        if found == "captured":
            metrics.CAPTURES.labels(view.currency).inc()
        elif found == "canceled":
            metrics.PAYMENTS.labels("canceled", view.failure_code or "").inc()
        if found is not None:
            metrics.STRIPE_AHEAD.labels(found).inc()
        return view


async def _post_capture(session: AsyncSession, tx: Transaction, amount: int) -> None:
    """The capture posting, the row's new status and its event, in the caller's transaction."""
    merchant = await session.get(Merchant, tx.merchant_id)
    if merchant is None:
        raise LookupError(f"merchant {tx.merchant_id} does not exist")
    fee = ledger.platform_fee(amount, merchant.fee_bps)
    await ledger.post(
        session,
        f"capture:{tx.id}",
        tx.currency,
        ledger.capture_entries(tx.merchant_id, amount, fee),
        f"capture of {tx.id}",
    )
    tx.status = "confirmed"
    tx.amount_captured = amount
    tx.failure_code = tx.failure_message = None
    await add_event(session, "payment.confirmed", tx.id, event_payload(tx))
