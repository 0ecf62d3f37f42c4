"""Reconciliation of payments: a PaymentIntent against our row (or against no row: an orphan of
ours is voided, someone else's authorization only logged), and a payment nothing will finish
settled as Stripe has it."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import WorkflowExecutionStatus

from payments.activities.payment_records import PaymentRecords
from payments.activities.reconciliation_gone import LostWorkflows
from payments.activities.reconciliation_log import Logbook
from payments.activities.reconciliation_rules import Obj, carries_our_marker, settling
from payments.activities.stripe_payments import StripePayments
from payments.schema.messages import CaptureRequest, StatusChange, VoidRequest
from payments.schema.tables import (
    CAPTURED_PAYMENT_STATUSES,
    CLOSED_PAYMENT_STATUSES,
    OPEN_PAYMENT_STATUSES,
    Transaction,
)


class PaymentChecks:
    def __init__(
        self,
        lost: LostWorkflows,
        margin: timedelta,
        stuck_after: timedelta,
        steps: tuple[PaymentRecords, StripePayments],
        logbook: Logbook,
    ) -> None:
        self._lost = lost
        self._margin, self._stuck_after = margin, stuck_after
        self._payments, self._stripe_payments = steps
        self._logbook = logbook

    async def compare(self, run_id: str, intent: Obj, tx: Transaction | None, counts: Counter[str]) -> None:
        if tx is None:
            await self._orphan_intent(run_id, intent, counts)
            return
        details: dict[str, Any]
        status = intent["status"]
        if tx.stripe_payment_intent_id not in (None, intent["id"]):
            await self._second_intent(run_id, intent, tx, counts)
        elif intent["amount"] != tx.amount or intent["currency"] != tx.currency:
            details = {"ours": [tx.amount, tx.currency], "stripe": [intent["amount"], intent["currency"]]}
            await self._logbook.log(run_id, counts, "amount_mismatch", intent["id"], details, tx_id=tx.id)
        elif (
            status == "succeeded"
            and tx.status in OPEN_PAYMENT_STATUSES + CLOSED_PAYMENT_STATUSES
            and not settling(tx, self._margin)
        ):
            await self._follow_capture(run_id, tx, intent, counts)
        elif (
            status == "succeeded"
            and tx.status in CAPTURED_PAYMENT_STATUSES
            and tx.amount_captured != intent["amount_received"]
        ):
            details = {"ours": tx.amount_captured, "stripe": intent["amount_received"]}
            await self._logbook.log(run_id, counts, "captured_amount_mismatch", intent["id"], details, tx_id=tx.id)
        elif status == "canceled" and tx.status in CAPTURED_PAYMENT_STATUSES:
            details = {"ours": tx.status, "stripe": status}
            await self._logbook.log(
                run_id, counts, "confirmed_but_canceled_at_stripe", intent["id"], details, tx_id=tx.id
            )
        elif status == "requires_capture" and tx.status in CLOSED_PAYMENT_STATUSES and not settling(tx, self._margin):
            await self._stripe_payments.void_payment(VoidRequest(intent["id"], intent["id"], "abandoned"))
            details = {"ours": tx.status, "amount": intent["amount"]}
            await self._logbook.log(
                run_id, counts, "closed_but_authorized_at_stripe", intent["id"], details, tx_id=tx.id, fixed=True
            )
        elif tx.status in OPEN_PAYMENT_STATUSES and await self.stuck(tx):
            await self.settle_stuck(run_id, tx, intent, counts)

    async def _orphan_intent(self, run_id: str, intent: Obj, counts: Counter[str]) -> None:
        """A PaymentIntent no row of ours names. Our row is always written before the
        authorization, so an old enough one of ours is an orphan: void it if it holds money on a
        card. One without our marker belongs to someone else on the account: never touched."""
        if datetime.fromtimestamp(intent["created"], UTC) > datetime.now(UTC) - self._margin:
            return  # too young to judge
        held = {"amount": intent["amount"], "currency": intent["currency"]}
        if intent["status"] == "requires_capture" and not carries_our_marker(intent):
            await self._logbook.log(run_id, counts, "foreign_authorization", intent["id"], held)
        elif intent["status"] == "requires_capture":
            await self._stripe_payments.void_payment(VoidRequest(intent["id"], intent["id"], "abandoned"))
            await self._logbook.log(run_id, counts, "orphan_authorization_voided", intent["id"], held, fixed=True)
        elif intent["status"] == "succeeded":
            details = {"amount_received": intent["amount_received"], "currency": intent["currency"]}
            await self._logbook.log(run_id, counts, "stripe_payment_without_record", intent["id"], details)

    async def _second_intent(self, run_id: str, intent: Obj, tx: Transaction, counts: Counter[str]) -> None:
        """A PaymentIntent for a payment whose row names another one: a second hold on the card is
        released; a second charge is for a person to refund."""
        details = {"ours": tx.stripe_payment_intent_id, "status": intent["status"], "amount": intent["amount"]}
        if intent["status"] == "requires_capture":
            await self._stripe_payments.void_payment(VoidRequest(intent["id"], intent["id"], "duplicate"))
            await self._logbook.log(
                run_id, counts, "second_payment_intent_voided", intent["id"], details, tx_id=tx.id, fixed=True
            )
        elif intent["status"] in ("succeeded", "processing", "requires_action"):
            await self._logbook.log(run_id, counts, "second_payment_intent", intent["id"], details, tx_id=tx.id)

    async def _follow_capture(self, run_id: str, tx: Transaction, intent: Obj, counts: Counter[str]) -> None:
        """Stripe captured and we did not record it (a crash, a capture out of band, or a payment
        we thought canceled or failed): follow Stripe."""
        if tx.stripe_payment_intent_id is None:
            await self._payments.record_status(StatusChange(tx.id, tx.status, None, payment_intent_id=intent["id"]))
        await self._payments.record_capture(CaptureRequest(tx.id, intent["id"], intent["amount_received"]))
        discrepancy = "captured_at_stripe" if tx.status in OPEN_PAYMENT_STATUSES else "closed_but_captured_at_stripe"
        details = {"was": tx.status, "captured": intent["amount_received"]}
        await self._logbook.log(run_id, counts, discrepancy, intent["id"], details, tx_id=tx.id, fixed=True)

    async def stuck(self, tx: Transaction) -> bool:
        """Open with no workflow to finish it: lost with Temporal's database (reconciliation_gone),
        or ended and older than the threshold."""
        if await self._lost.gone(tx.workflow_id, tx.updated_at):
            return True
        if tx.updated_at > datetime.now(UTC) - self._stuck_after:
            return False
        return await self._lost.status(tx.workflow_id) != WorkflowExecutionStatus.RUNNING

    async def settle_stuck(self, run_id: str, tx: Transaction, intent: Obj | None, counts: Counter[str]) -> None:
        """Kill Bill's janitor: nothing will finish this payment, so settle it as Stripe has it."""
        if intent is None or intent["status"] in ("requires_payment_method", "requires_confirmation"):
            # A declined payment waiting on another card has announced its declines: it is given up.
            code = "abandoned_after_decline" if tx.status == "declined" else "abandoned"
            change = StatusChange(tx.id, "failed", "payment.failed", failure_code=code)
        elif intent["status"] == "requires_capture":
            await self._stripe_payments.void_payment(VoidRequest(tx.id, intent["id"], "abandoned"))
            change = StatusChange(tx.id, "canceled", "payment.canceled", failure_code="authorization_abandoned")
        elif intent["status"] == "canceled":
            change = StatusChange(tx.id, "canceled", "payment.canceled", failure_code="canceled_at_stripe")
        elif intent["status"] == "succeeded":  # captured, and the workflow was lost before it recorded it
            await self._follow_capture(run_id, tx, intent, counts)
            return
        else:
            return  # requires_action, processing: still moving at Stripe; a later run looks again
        if intent is not None and tx.stripe_payment_intent_id is None:
            change = dataclasses.replace(change, payment_intent_id=intent["id"])
        await self._payments.record_status(change)
        details = {"was": tx.status, "now": change.status, "stripe": intent["status"] if intent else None}
        await self._logbook.log(run_id, counts, "stuck_payment_settled", tx.id, details, tx_id=tx.id, fixed=True)
