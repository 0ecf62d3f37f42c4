"""Stripe side of a dispute: read it back with the money Stripe moved (what the workflow acts on,
never the webhook), send the merchant's evidence, accept it (close). Writes carry idempotency
keys derived from the dispute."""

from __future__ import annotations

from collections.abc import Awaitable

import stripe
from temporalio import activity

from payments.activities.heartbeat import heartbeating
from payments.activities.stripe_errors import final_or_transient
from payments.schema.messages import DisputeFunds, EvidenceSubmission, StripeDispute


def _funds(dispute: stripe.Dispute, withdrawn: bool) -> DisputeFunds | None:
    """The dispute's withdrawal (a negative balance transaction, with Stripe's dispute fee) or
    its reinstatement (a positive one), if Stripe has moved that money yet."""
    for txn in dispute.balance_transactions or []:
        if (txn.amount < 0) == withdrawn:
            return DisputeFunds(txn.id, txn.amount, txn.fee, txn.net)
    return None


def stripe_dispute(dispute: stripe.Dispute) -> StripeDispute:
    intent = dispute.payment_intent
    return StripeDispute(
        stripe_dispute_id=dispute.id,
        payment_intent_id=intent if isinstance(intent, str) or intent is None else intent.id,
        amount=dispute.amount,
        currency=dispute.currency,
        reason=dispute.reason,
        status=dispute.status,
        evidence_due_by=dispute.evidence_details.due_by or dispute.created,
        withdrawal=_funds(dispute, withdrawn=True),
        reinstatement=_funds(dispute, withdrawn=False),
    )


async def _answered(call: Awaitable[stripe.Dispute]) -> StripeDispute:
    """Stripe's dispute after the call, or the failure the workflow branches on."""
    try:
        return stripe_dispute(await heartbeating(call))
    except stripe.StripeError as exc:
        raise final_or_transient(exc) from exc


class StripeDisputes:
    def __init__(self, client: stripe.StripeClient) -> None:
        self._stripe = client

    @activity.defn
    async def read_dispute(self, stripe_dispute_id: str) -> StripeDispute:
        return await _answered(self._stripe.v1.disputes.retrieve_async(stripe_dispute_id))

    @activity.defn
    async def send_evidence(self, evidence: EvidenceSubmission) -> StripeDispute:
        return await _answered(
            self._stripe.v1.disputes.update_async(
                evidence.stripe_dispute_id,
                params={"evidence": {"uncategorized_text": evidence.text}, "submit": evidence.submit},
                options={"idempotency_key": f"{evidence.stripe_dispute_id}:evidence:{evidence.sequence}"},
            )
        )

    @activity.defn
    async def accept_dispute(self, stripe_dispute_id: str) -> StripeDispute:
        key = f"{stripe_dispute_id}:accept"
        return await _answered(
            self._stripe.v1.disputes.close_async(stripe_dispute_id, options={"idempotency_key": key})
        )
