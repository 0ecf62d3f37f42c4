"""Stripe side of a refund: create it (the refund id is its idempotency key) and read it back,
which is what the refund's workflows act on, never a webhook's copy of it."""

from __future__ import annotations

from collections.abc import Awaitable

import stripe
from temporalio import activity
from temporalio.exceptions import ApplicationError

from payments.activities.heartbeat import heartbeating
from payments.activities.stripe_errors import final_or_transient
from payments.schema.messages import RefundSettlement, RefundView, StripeRefund


async def _answered(call: Awaitable[stripe.Refund]) -> stripe.Refund:
    try:
        return await heartbeating(call)
    except stripe.StripeError as exc:
        raise final_or_transient(exc) from exc


def _stripe_refund(refund_id: str, refund: stripe.Refund) -> StripeRefund:
    return StripeRefund(refund_id, refund.id, refund.status or "pending", getattr(refund, "failure_reason", None))


class StripeRefunds:
    def __init__(self, client: stripe.StripeClient) -> None:
        self._stripe = client

    @activity.defn
    async def refund_at_stripe(self, refund: RefundView) -> StripeRefund:
        created = await _answered(
            self._stripe.v1.refunds.create_async(
                params={
                    "payment_intent": refund.payment_intent_id,
                    "amount": refund.amount,
                    "metadata": {"refund_id": refund.refund_id, "tx_id": refund.tx_id},
                },
                options={"idempotency_key": refund.refund_id},
            )
        )
        return _stripe_refund(refund.refund_id, created)

    @activity.defn
    async def read_refund(self, settlement: RefundSettlement) -> StripeRefund:
        read = await _answered(self._stripe.v1.refunds.retrieve_async(settlement.stripe_refund_id))
        if read.to_dict().get("metadata", {}).get("refund_id") != settlement.refund_id:
            raise ApplicationError(
                f"Stripe's refund {read.id} is not refund {settlement.refund_id}.",
                type="NotOurRefund",
                non_retryable=True,
            )
        return _stripe_refund(settlement.refund_id, read)
