"""DisputeWorkflow, id `dispute:{stripe_dispute_id}`: a chargeback on one of our payments.

read the dispute back from Stripe -> record it -> wait for the merchant's evidence (submitted at
once, or kept until the deadline) or acceptance, or the `due_by` deadline (then saved evidence is
submitted, none means accepted) -> wait for the bank's outcome (a webhook signal, or the periodic
read-back from Stripe) -> record it. The money moves in the books when Stripe's dispute shows it
moved (`charge.dispute.funds_withdrawn`: the amount and Stripe's fee from its balance transaction;
`funds_reinstated`): an inquiry moves none unless it escalates. Every step acts on Stripe's object
as read back, never on a webhook.
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from payments.activities.dispute_records import DisputeRecords
    from payments.activities.stripe_disputes import StripeDisputes
    from payments.schema.messages import (
        DisputeEvidence,
        DisputeRecord,
        DisputeRequest,
        DisputeStatusChange,
        DisputeView,
        EvidenceSubmission,
        StripeDispute,
        StripeDisputeEvent,
    )
    from payments.workflows import search_attributes as sa
    from payments.workflows.failures import final_failure
    from payments.workflows.policies import DB_STEP, STRIPE_STEP

RESPONDABLE = ("needs_response", "warning_needs_response")
CLOSED = ("won", "lost", "warning_closed")
# Before this patch the withdrawal (with a fixed fee) was posted at creation and the reinstatement
# on a won outcome; since, each is posted when Stripe's dispute shows its balance transaction.
FUNDS_FROM_STRIPE = "dispute-funds-from-stripe"
# What our Stripe webhook endpoint subscribes to for disputes: each one a hint to read back.
WEBHOOK_EVENTS = (
    "charge.dispute.created",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.closed",
    "charge.dispute.funds_reinstated",
)


def workflow_id(stripe_dispute_id: str) -> str:
    return f"dispute:{stripe_dispute_id}"


def payment_status(dispute_status: str) -> str:
    """What the disputed payment's `PaymentStatus` shows: disputed, then how it ended."""
    return f"dispute_{dispute_status}" if dispute_status in ("won", "lost") else "disputed"


@workflow.defn
class DisputeWorkflow:
    def __init__(self) -> None:
        self._view: DisputeView | None = None
        self._evidence: list[DisputeEvidence] = []
        self._evidence_sent = 0  # how many of the merchant's evidence updates reached Stripe
        self._accept = False
        self._stripe_changed = False
        self._funds_moved = False  # funds_withdrawn: a hint to read back, heeded since FUNDS_FROM_STRIPE
        self._funds_from_stripe = False

    @workflow.run
    async def run(self, request: DisputeRequest) -> DisputeView | None:
        self._stripe_dispute_id = request.stripe_dispute_id
        self._funds_from_stripe = workflow.patched(FUNDS_FROM_STRIPE)
        dispute = await self._read()
        view = await workflow.execute_local_activity_method(
            DisputeRecords.record_dispute,
            DisputeRecord(dispute, request.fee, workflow.info().workflow_id, self._funds_from_stripe),
            **DB_STEP,
        )
        if view is None:
            return None  # not a payment of ours: reconciliation reports it
        self._set_view(view)
        if view.status in RESPONDABLE:
            await self._respond()
        await self._await_outcome(request.read_back_seconds)
        await workflow.wait_condition(workflow.all_handlers_finished)  # every update gets its answer
        return self._view

    # --- steps ---

    async def _respond(self) -> None:
        """Until the deadline: evidence (kept or submitted), acceptance, or Stripe closing it."""
        deadline = datetime.fromtimestamp(self._current.evidence_due_by, UTC)
        while self._current.status in RESPONDABLE:
            remaining = (deadline - workflow.now()).total_seconds()
            try:
                await workflow.wait_condition(
                    lambda: bool(self._evidence) or self._accept or self._woken, timeout=max(remaining, 0.001)
                )
            except TimeoutError:
                # The deadline: evidence kept so far goes to the bank; without any, the dispute is accepted.
                saved = self._current.evidence_text
                await (self._send_evidence(DisputeEvidence(saved, True)) if saved else self._accept_at_stripe())
                return
            if self._accept:
                await self._accept_at_stripe()
            elif self._evidence:
                await self._send_evidence(self._evidence.pop(0))
                self._evidence_sent += 1
            else:
                self._stripe_changed = self._funds_moved = False
                await self._follow(await self._read())

    async def _await_outcome(self, read_back_seconds: int) -> None:
        """The bank decides; a webhook says so, and a read-back now and then covers a lost one."""
        while self._current.status not in CLOSED:
            try:
                await workflow.wait_condition(lambda: self._woken, timeout=read_back_seconds)
            except TimeoutError:
                pass
            self._stripe_changed = self._funds_moved = False
            await self._follow(await self._read())

    async def _send_evidence(self, evidence: DisputeEvidence) -> None:
        submission = EvidenceSubmission(self._stripe_dispute_id, evidence.text, evidence.submit, self._evidence_sent)
        try:
            sent: StripeDispute = await workflow.execute_activity_method(
                StripeDisputes.send_evidence, submission, **STRIPE_STEP
            )
        except ActivityError as error:
            if final_failure(error) is None:
                raise
            sent = await self._read()  # Stripe refused: it has moved on (closed); follow it
            await self._follow(sent)
            return
        await self._follow(sent, evidence.text)

    async def _accept_at_stripe(self) -> None:
        try:
            closed: StripeDispute = await workflow.execute_activity_method(
                StripeDisputes.accept_dispute, self._stripe_dispute_id, **STRIPE_STEP
            )
        except ActivityError as error:
            if final_failure(error) is None:
                raise
            closed = await self._read()  # already decided at Stripe
        await self._follow(closed)

    async def _read(self) -> StripeDispute:
        return await workflow.execute_activity_method(  # type: ignore[no-any-return]
            StripeDisputes.read_dispute, self._stripe_dispute_id, **STRIPE_STEP
        )

    async def _follow(self, dispute: StripeDispute, evidence_text: str | None = None) -> None:
        """Record Stripe's status (and the evidence sent, and the money it moved) when it changes
        anything of ours."""
        funds_moved = self._funds_from_stripe and (
            (dispute.withdrawal is not None) != self._current.withdrawn
            or (dispute.reinstatement is not None) != self._current.reinstated
        )
        if dispute.status == self._current.status and evidence_text is None and not funds_moved:
            return
        stripe = dispute if self._funds_from_stripe else None
        change = DisputeStatusChange(self._current.dispute_id, dispute.status, evidence_text, stripe)
        self._set_view(
            await workflow.execute_local_activity_method(DisputeRecords.record_dispute_status, change, **DB_STEP)
        )

    def _set_view(self, view: DisputeView) -> None:
        if self._view is None or self._view.status != view.status:
            workflow.upsert_search_attributes(
                [
                    sa.TX_ID.value_set(view.tx_id),
                    sa.MERCHANT_ID.value_set(view.merchant_id),
                    sa.PAYMENT_STATUS.value_set(payment_status(view.status)),
                    sa.AMOUNT_MINOR.value_set(view.amount),
                    sa.CURRENCY.value_set(view.currency),
                ]
            )
        self._view = view

    @property
    def _woken(self) -> bool:
        return self._stripe_changed or (self._funds_from_stripe and self._funds_moved)

    @property
    def _current(self) -> DisputeView:
        assert self._view is not None
        return self._view

    def _not_open(self) -> ApplicationError:
        status = self._current.status
        return ApplicationError(f"The dispute is {status}.", {"status": status}, type="DisputeNotOpen")

    # --- the API's handles ---

    @workflow.update
    async def submit_evidence(self, evidence: DisputeEvidence) -> DisputeView:
        await workflow.wait_condition(lambda: self._view is not None)
        if self._current.status not in RESPONDABLE or self._accept:
            raise self._not_open()
        self._evidence.append(evidence)
        wanted = self._evidence_sent + len(self._evidence)
        await workflow.wait_condition(lambda: self._evidence_sent >= wanted or self._current.status not in RESPONDABLE)
        return self._current

    @workflow.update
    async def accept(self) -> DisputeView:
        await workflow.wait_condition(lambda: self._view is not None)
        if self._current.status not in RESPONDABLE and not self._accept:
            raise self._not_open()
        self._accept = True
        await workflow.wait_condition(lambda: self._current.status not in RESPONDABLE)
        return self._current

    @workflow.signal
    def stripe_event(self, event: StripeDisputeEvent) -> None:
        if event.type == "charge.dispute.funds_withdrawn":
            self._funds_moved = True
        elif event.type != "charge.dispute.created":
            self._stripe_changed = True  # what it says is read back from Stripe, not taken from it

    @workflow.query
    def status(self) -> DisputeView | None:
        return self._view
