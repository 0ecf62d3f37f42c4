"""Stripe Transfers to a merchant's connected account, the payout id as the idempotency key; and
their reversals (a deficit taken back), the reversal id as the idempotency key."""

from __future__ import annotations

import stripe
from temporalio import activity

from payments.activities.heartbeat import heartbeating
from payments.activities.stripe_errors import final_or_transient
from payments.schema.messages import PayoutTransfer, PayoutView, PlannedReversal, ReversalResult


class StripeTransfers:
    def __init__(self, client: stripe.StripeClient) -> None:
        self._stripe = client

    @activity.defn
    async def transfer_payout(self, payout: PayoutView) -> PayoutTransfer:
        try:
            transfer = await heartbeating(
                self._stripe.v1.transfers.create_async(
                    params={
                        "amount": payout.amount,
                        "currency": payout.currency,
                        "destination": payout.destination,
                        "transfer_group": payout.payout_id,
                        "metadata": {"payout_id": payout.payout_id, "merchant_id": payout.merchant_id},
                    },
                    options={"idempotency_key": payout.payout_id},
                )
            )
        except stripe.StripeError as exc:
            raise final_or_transient(exc) from exc
        return PayoutTransfer(payout.payout_id, transfer.id)

    @activity.defn
    async def reverse_transfer(self, reversal: PlannedReversal) -> ReversalResult:
        try:
            made = await heartbeating(
                self._stripe.v1.transfers.reversals.create_async(
                    reversal.stripe_transfer_id,
                    params={
                        "amount": reversal.amount,
                        "metadata": {"reversal_id": reversal.reversal_id, "payout_id": reversal.payout_id},
                    },
                    options={"idempotency_key": reversal.reversal_id},
                )
            )
        except stripe.StripeError as exc:
            raise final_or_transient(exc) from exc
        return ReversalResult(reversal.reversal_id, made.id)
