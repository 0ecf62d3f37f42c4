"""RefundWorkflow, id `refund:{tx_id}:{idempotency_key}`: reserve -> refund at Stripe -> record.
A refusal at Stripe compensates by releasing the reservation; after Stripe accepted the refund the
local write is retried until it lands. A refund Stripe holds `pending` is then followed by its
RefundSettlementWorkflow, id `refund-settlement:{refund_id}`, which reads the Refund back (on
Stripe's webhook, or now and then) until Stripe settles it. The same workflow, started anew by a
webhook, records a refund that fails after it succeeded. The payment's status goes to `PaymentStatus`."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from payments.activities.refund_records import RefundRecords
    from payments.activities.stripe_refunds import StripeRefunds
    from payments.schema.messages import (
        RefundFailure,
        RefundRequest,
        RefundSettlement,
        RefundView,
        StripeRefund,
        StripeRefundEvent,
    )
    from payments.workflows import search_attributes as sa
    from payments.workflows.failures import failure_details, final_failure
    from payments.workflows.policies import DB_STEP, STRIPE_STEP

# What our Stripe webhook endpoint subscribes to for refunds: each one a hint to read back.
WEBHOOK_EVENTS = ("charge.refund.updated", "charge.refunded")
# A refund accepted at Stripe but not yet settled there is followed by a workflow of its own.
FOLLOW_PENDING = "refund-pending-at-stripe"


def workflow_id(tx_id: str, idempotency_key: str) -> str:
    return f"refund:{tx_id}:{idempotency_key}"


def settlement_id(refund_id: str) -> str:
    return f"refund-settlement:{refund_id}"


@workflow.defn
class RefundWorkflow:
    @workflow.run
    async def run(self, request: RefundRequest) -> RefundView:
        reserved = await workflow.execute_local_activity_method(RefundRecords.reserve_refund, request, **DB_STEP)
        if reserved.status != "pending" or reserved.stripe_refund_id is not None:
            return reserved  # this refund was already settled, or is at Stripe (its settlement follows it)
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
        if recorded.status == "pending" and workflow.patched(FOLLOW_PENDING):
            await self._follow(request, refunded)
        return recorded

    async def _follow(self, request: RefundRequest, refunded: StripeRefund) -> None:
        """Hand the pending refund to its settlement workflow, which outlives this one (the API
        answers `pending` now; Stripe may take days)."""
        settlement = RefundSettlement(
            request.refund_id, request.tx_id, refunded.stripe_refund_id, request.read_back_seconds
        )
        try:
            await workflow.start_child_workflow(
                RefundSettlementWorkflow.run,
                settlement,
                id=settlement_id(request.refund_id),
                parent_close_policy=ParentClosePolicy.ABANDON,
            )
        except WorkflowAlreadyStartedError:
            pass  # Stripe's webhook came first and started it


@workflow.defn
class RefundSettlementWorkflow:
    """Reads the Refund back from Stripe and records what it finds, until Stripe has settled it."""

    def __init__(self) -> None:
        self._stripe_changed = False

    @workflow.run
    async def run(self, settlement: RefundSettlement) -> RefundView:
        while True:
            self._stripe_changed = False
            read: StripeRefund = await workflow.execute_activity_method(
                StripeRefunds.read_refund, settlement, **STRIPE_STEP
            )
            view = await workflow.execute_local_activity_method(RefundRecords.record_refund, read, **DB_STEP)
            if view.payment_status:
                workflow.upsert_search_attributes(
                    [sa.TX_ID.value_set(view.tx_id), sa.PAYMENT_STATUS.value_set(view.payment_status)]
                )
            if view.status != "pending":
                return view
            try:
                await workflow.wait_condition(
                    lambda: self._stripe_changed, timeout=timedelta(seconds=settlement.read_back_seconds)
                )
            except TimeoutError:
                pass  # a webhook may be lost: read it back all the same

    @workflow.signal
    def stripe_event(self, _: StripeRefundEvent) -> None:
        self._stripe_changed = True  # what it says is read back from Stripe, not taken from it
