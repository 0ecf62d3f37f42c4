"""Payouts in PostgreSQL: reserve (under the merchant's row lock, so racing payouts and refunds
can never overdraw the payable), then mark paid or reverse, each with its ledger posting and
outbox event in the same transaction."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from payments.activities import ledger, metrics, payout_settlements
from payments.activities.outbox import add_event
from payments.schema import balances
from payments.schema.messages import MerchantPageRequest, PayoutFailure, PayoutTransfer, PayoutView, ReserveRequest
from payments.schema.tables import Merchant, Payout


def payout_view(payout: Payout, destination: str, replayed: bool = False) -> PayoutView:
    return PayoutView(
        payout_id=payout.id,
        merchant_id=payout.merchant_id,
        amount=payout.amount,
        currency=payout.currency,
        status=payout.status,
        period=payout.period,
        destination=destination,
        stripe_transfer_id=payout.stripe_transfer_id,
        failure_code=payout.failure_code,
        replayed=replayed,
        request_fingerprint=payout.request_fingerprint,
        created_at=payout.created_at,
    )


def _event_payload(payout: Payout) -> dict[str, object]:
    return {
        "payout_id": payout.id,
        "merchant_id": payout.merchant_id,
        "amount": payout.amount,
        "currency": payout.currency,
        "status": payout.status,
        "period": payout.period,
        "failure_code": payout.failure_code,
    }


async def locked_merchant(session: AsyncSession, merchant_id: str) -> Merchant:
    """Payouts and balance recoveries of one merchant take this lock before reading its balance. It
    is FOR NO KEY UPDATE: a new payment's foreign key to the merchant does not wait for it (FOR
    UPDATE made every payment init of the merchant wait for its payout's transaction)."""
    merchant = await session.get(Merchant, merchant_id, with_for_update={"key_share": True})
    if merchant is None:
        raise ApplicationError(f"No merchant {merchant_id}.", type="UnknownMerchant", non_retryable=True)
    return merchant


def _refused(message: str, kind: str, available: int) -> ApplicationError:
    return ApplicationError(message, {"available": available}, type=kind, non_retryable=True)


class PayoutRecords:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn
    async def reserve_payout(self, reserve: ReserveRequest) -> PayoutView:
        """Debit the payable into payouts_in_transit; a repeat of the key returns the first payout."""
        request = reserve.request
        async with self._sessions.begin() as session:
            merchant = await locked_merchant(session, request.merchant_id)
            existing = (
                await session.execute(
                    select(Payout).where(
                        Payout.merchant_id == merchant.id, Payout.idempotency_key == request.idempotency_key
                    )
                )
            ).scalar_one_or_none()
            if existing is not None:
                return payout_view(existing, merchant.payout_account or "", replayed=True)
            currency = request.currency or merchant.currency
            hold = timedelta(seconds=request.hold_seconds)
            available = await balances.available(session, merchant.id, currency, hold)
            amount = request.amount if request.amount is not None else available
            if amount <= 0 or amount > available:
                raise _refused(
                    f"The payout of {amount} exceeds the available {available}.", "InsufficientBalance", available
                )
            if not merchant.payout_account:
                raise _refused("The merchant has no payout account yet.", "NoPayoutAccount", available)
            payout = Payout(
                id=reserve.payout_id,
                merchant_id=merchant.id,
                amount=amount,
                currency=currency,
                status="in_transit",
                period=request.period,
                idempotency_key=request.idempotency_key,
                request_fingerprint=request.fingerprint,
            )
            session.add(payout)
            await session.flush()
            await ledger.post(
                session,
                f"payout:{payout.id}:reserve",
                currency,
                ledger.payout_reserve_entries(merchant.id, amount),
                f"payout {payout.id} reserved",
            )
            await payout_settlements.settle(session, payout.id, merchant.id, currency, hold)
            return payout_view(payout, merchant.payout_account)

    @activity.defn
    async def record_payout_paid(self, transfer: PayoutTransfer) -> PayoutView:
        async with self._sessions.begin() as session:
            payout, destination = await self._locked(session, transfer.payout_id)
            paid = payout.status == "in_transit"
            if paid:
                payout.status, payout.stripe_transfer_id = "paid", transfer.stripe_transfer_id
                await ledger.post(
                    session,
                    f"payout:{payout.id}:paid",
                    payout.currency,
                    ledger.payout_paid_entries(payout.amount),
                    f"payout {payout.id} transferred",
                )
                statement = {"statement_url": f"/payouts/{payout.id}/statement"}  # what the payout paid for
                await add_event(session, "payout.paid", payout.id, _event_payload(payout) | statement)
            view = payout_view(payout, destination)
        if paid:
            metrics.PAYOUTS.labels("paid").inc()
        return view

    @activity.defn
    async def fail_payout(self, failure: PayoutFailure) -> PayoutView:
        """Compensation: Stripe refused the transfer, so the reserve is reversed."""
        async with self._sessions.begin() as session:
            payout, destination = await self._locked(session, failure.payout_id)
            reversed_ = payout.status == "in_transit"
            if reversed_:
                payout.status, payout.failure_code = "failed", failure.failure_code
                reserve = ledger.payout_reserve_entries(payout.merchant_id, payout.amount)
                await ledger.post(
                    session,
                    f"payout:{payout.id}:reversal",
                    payout.currency,
                    ledger.reversing(reserve),
                    f"payout {payout.id} failed: {failure.failure_code}",
                )
                await payout_settlements.release(session, payout.id, payout.merchant_id)
                await add_event(session, "payout.failed", payout.id, _event_payload(payout))
            view = payout_view(payout, destination)
        if reversed_:
            metrics.PAYOUTS.labels("failed").inc()
        return view

    @activity.defn
    async def payable_merchants(self, page: MerchantPageRequest) -> list[str]:
        hold = timedelta(seconds=page.hold_seconds)
        query = balances.payable_merchants(page.payout_schedule, page.after_merchant_id, page.limit, hold)
        async with self._sessions() as session:
            return list((await session.execute(query)).scalars())

    async def _locked(self, session: AsyncSession, payout_id: str) -> tuple[Payout, str]:
        payout = await session.get(Payout, payout_id, with_for_update=True)
        if payout is None:
            raise LookupError(f"payout {payout_id} does not exist")
        merchant = await session.get(Merchant, payout.merchant_id)
        return payout, (merchant.payout_account if merchant else None) or ""
