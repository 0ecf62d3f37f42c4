"""Deficit recovery in PostgreSQL: plan, under the merchant's lock, which of its latest paid
payouts to reverse and by how much (never more than the deficit that has lasted, nor than is left
of a transfer), once per recovery id; then record each reversal with its ledger posting."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from payments.activities import ledger
from payments.activities.payout_records import locked_merchant
from payments.schema import balances
from payments.schema.messages import DeficitPageRequest, PlannedReversal, RecoveryRequest, ReversalResult
from payments.schema.tables import Payout, TransferReversal

LATEST_PAYOUTS = 100  # the transfers a recovery looks back over, newest first


def reversal_id(recovery_id: str, payout_id: str) -> str:
    """Derived from the recovery and the payout: also Stripe's idempotency key for the reversal."""
    return "trv_" + hashlib.sha256(f"{recovery_id}:{payout_id}".encode()).hexdigest()[:32]


def planned(reversal: TransferReversal, payout: Payout) -> PlannedReversal:
    return PlannedReversal(
        reversal_id=reversal.id,
        merchant_id=reversal.merchant_id,
        payout_id=reversal.payout_id,
        stripe_transfer_id=payout.stripe_transfer_id or "",
        amount=reversal.amount,
        currency=reversal.currency,
        status=reversal.status,
        stripe_reversal_id=reversal.stripe_reversal_id,
        failure_code=reversal.failure_code,
    )


async def _taken_back(session: AsyncSession, merchant_id: str) -> dict[str, int]:
    """Per payout, what reversals have taken or are taking back (failed ones took nothing)."""
    rows = await session.execute(
        select(TransferReversal.payout_id, func.sum(TransferReversal.amount))
        .where(TransferReversal.merchant_id == merchant_id, TransferReversal.status != "failed")
        .group_by(TransferReversal.payout_id)
    )
    return {payout_id: int(amount) for payout_id, amount in rows}


class RecoveryRecords:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn
    async def plan_recovery(self, request: RecoveryRequest) -> list[PlannedReversal]:
        async with self._sessions.begin() as session:
            merchant = await locked_merchant(session, request.merchant_id)
            existing = (
                await session.execute(
                    select(TransferReversal, Payout)
                    .join(Payout, Payout.id == TransferReversal.payout_id)
                    .where(TransferReversal.recovery_id == request.recovery_id)
                    .order_by(TransferReversal.created_at, TransferReversal.id)
                )
            ).all()
            if existing:
                return [planned(reversal, payout) for reversal, payout in existing]  # planned once
            age = timedelta(seconds=request.recovery_after_seconds)
            deficit = await balances.lasting_deficit(session, merchant.id, merchant.currency, age)
            taken = await _taken_back(session, merchant.id)
            in_flight = await session.execute(
                select(func.coalesce(func.sum(TransferReversal.amount), 0)).where(
                    TransferReversal.merchant_id == merchant.id, TransferReversal.status == "pending"
                )
            )
            left = deficit - int(in_flight.scalar_one())  # pending reversals will credit the payable
            latest = await session.execute(
                select(Payout)
                .where(
                    Payout.merchant_id == merchant.id,
                    Payout.currency == merchant.currency,
                    Payout.status == "paid",
                    Payout.stripe_transfer_id.is_not(None),
                )
                .order_by(Payout.created_at.desc(), Payout.id.desc())
                .limit(LATEST_PAYOUTS)
            )
            plan: list[PlannedReversal] = []
            for payout in latest.scalars():
                if left <= 0:
                    break
                amount = min(payout.amount - taken.get(payout.id, 0), left)
                if amount <= 0:
                    continue  # reversed in full already
                reversal = TransferReversal(
                    id=reversal_id(request.recovery_id, payout.id),
                    recovery_id=request.recovery_id,
                    merchant_id=merchant.id,
                    payout_id=payout.id,
                    amount=amount,
                    currency=payout.currency,
                    status="pending",
                )
                session.add(reversal)
                plan.append(planned(reversal, payout))
                left -= amount
            await session.flush()
            return plan

    @activity.defn
    async def record_reversal(self, result: ReversalResult) -> PlannedReversal:
        """The money came back from the connected account (or Stripe refused): posted once."""
        async with self._sessions.begin() as session:
            reversal = await session.get(TransferReversal, result.reversal_id, with_for_update=True)
            assert reversal is not None
            payout = await session.get(Payout, reversal.payout_id)
            assert payout is not None
            if reversal.status == "pending" and result.stripe_reversal_id:
                reversal.status, reversal.stripe_reversal_id = "reversed", result.stripe_reversal_id
                await ledger.post(
                    session,
                    f"reversal:{reversal.id}",
                    reversal.currency,
                    ledger.transfer_reversal_entries(reversal.merchant_id, reversal.amount),
                    f"deficit recovered from payout {payout.id}",
                )
            elif reversal.status == "pending":
                reversal.status, reversal.failure_code = "failed", result.failure_code
            await session.flush()
            return planned(reversal, payout)

    @activity.defn
    async def merchants_in_deficit(self, page: DeficitPageRequest) -> list[str]:
        async with self._sessions() as session:
            query = balances.merchants_in_deficit(page.after_merchant_id, page.limit)
            return list((await session.execute(query)).scalars())
