"""RefundWorkflow, id `refund:{tx_id}:{idempotency_key}`: reserve -> refund at Stripe -> record.
A refusal at Stripe compensates by releasing the reservation; after a Stripe success the local
write is retried until it lands. The recorded refund's payment status goes to `PaymentStatus`."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.refund_records import RefundRecords, StripeRefunds
    from schema.messages import RefundFailure, RefundRequest, RefundView
    from workflows import search_attributes as sa
    from workflows.failures import failure_details, final_failure
    from workflows.policies import DB_STEP, STRIPE_STEP


def workflow_id(tx_id: str, idempotency_key: str) -> str:
    return f"refund:{tx_id}:{idempotency_key}"


@workflow.defn
class RefundWorkflow:
    @workflow.run
    async def run(self, request: RefundRequest) -> RefundView:
        reserved = await workflow.execute_local_activity_method(RefundRecords.reserve_refund, request, **DB_STEP)
        if reserved.status != "pending":
            return reserved  # this refund was already settled
        try:
            refunded = await workflow.execute_activity_method(StripeRefunds.refund_at_stripe, reserved, **STRIPE_STEP)
        except ActivityError as error:
            refused = final_failure(error)
            if refused is None:
                raise
            code = failure_details(refused).get("code")
            failed = RefundFailure(reserved.refund_id, code or "refund_refused")
            return await workflow.execute_local_activity_method(RefundRecords.fail_refund, failed, **DB_STEP)
        recorded = await workflow.execute_local_activity_method(RefundRecords.record_refund, refunded, **DB_STEP)
        if workflow.patched("refund-payment-status") and recorded.payment_status:
            workflow.upsert_search_attributes([sa.PAYMENT_STATUS.value_set(recorded.payment_status)])
        return recorded
