"""PaymentCatchUpWorkflow, id `payment-catch-up:{tx_id}`: Stripe says a payment moved (captured,
voided) and the payment's own workflow is no longer there to hear it (it ended, or Temporal lost
it). Read the PaymentIntent back and record what Stripe holds: a webhook is a hint, Stripe's object
is the truth. Started by the Stripe webhook route; a payment that moves again later starts a new run."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from payments.activities.payment_records import PaymentRecords
    from payments.activities.stripe_payments import StripePayments
    from payments.schema.messages import PaymentCatchUp, PaymentIntentState, PaymentView, StripeAhead
    from payments.workflows import search_attributes as sa
    from payments.workflows.policies import DB_STEP
    from payments.workflows.stripe_steps import stripe_step


def workflow_id(tx_id: str) -> str:
    return f"payment-catch-up:{tx_id}"


@workflow.defn
class PaymentCatchUpWorkflow:
    @workflow.run
    async def run(self, request: PaymentCatchUp) -> PaymentView:
        state: PaymentIntentState = await stripe_step(StripePayments.read_payment_intent, request.payment_intent_id)
        view: PaymentView = await workflow.execute_local_activity_method(
            PaymentRecords.follow_stripe, StripeAhead(request.tx_id, state), **DB_STEP
        )
        workflow.upsert_search_attributes([sa.PAYMENT_STATUS.value_set(view.status)])
        return view
