"""Merchant onboarding activities: the merchant row and its Stripe connected account."""

from __future__ import annotations

import stripe
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from payments.activities.heartbeat import heartbeating
from payments.activities.stripe_errors import final_or_transient
from payments.schema.messages import ConnectedAccountRequest, NewMerchant, PayoutAccount
from payments.schema.party_cache import PartyCache
from payments.schema.tables import Merchant


class MerchantActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        stripe_client: stripe.StripeClient,
        parties: PartyCache,
    ) -> None:
        self._sessions = sessions
        self._stripe = stripe_client
        self._parties = parties

    @activity.defn
    async def record_merchant(self, merchant: NewMerchant) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                insert(Merchant)
                .values(
                    id=merchant.merchant_id,
                    name=merchant.name,
                    payout_schedule=merchant.payout_schedule,
                    fee_bps=merchant.fee_bps,
                    currency=merchant.currency,
                    payout_account=merchant.payout_account,
                )
                .on_conflict_do_nothing(index_elements=[Merchant.id])
            )
        await self._parties.forget_merchant(merchant.merchant_id)

    @activity.defn
    async def create_connected_account(self, request: ConnectedAccountRequest) -> str:
        try:
            account = await heartbeating(
                self._stripe.v1.accounts.create_async(
                    params={
                        "type": "express",
                        "default_currency": request.currency,
                        "metadata": {"merchant_id": request.merchant_id},
                    },
                    # Derived, never random: a retry after a lost response gets the same account.
                    options={"idempotency_key": f"{request.merchant_id}:account"},
                )
            )
        except stripe.StripeError as exc:
            raise final_or_transient(exc) from exc
        return account.id

    @activity.defn
    async def attach_payout_account(self, account: PayoutAccount) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(Merchant).where(Merchant.id == account.merchant_id).values(payout_account=account.account_id)
            )
        await self._parties.forget_merchant(account.merchant_id)
