"""Record workflow histories for the replay tests: `.venv/bin/python -m tests.replay.record`.

Records only the histories that are missing. Run it when a workflow gains a path worth guarding;
never delete and re-record an existing history to make a failing replay pass: that failure means
workflows already running would break.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from payments.schema.messages import (
    AnotherCard,
    Authorization,
    ConfirmRequest,
    DisputeEvidence,
    DisputeRequest,
    InitRequest,
    PaymentCatchUp,
    PaymentView,
    PayoutRequest,
    PayoutRunInput,
    ReconciliationInput,
    RecoveryRequest,
    RecoveryRunInput,
    RedirectToUrl,
    RefundSettlement,
    RefundView,
    StripeBalanceCheck,
    StripeDisputeEvent,
    StripePaymentEvent,
    StripeRefundEvent,
    WebhookDeliveryRequest,
)
from payments.workers.registry import workflows
from payments.workflows.dispute import DisputeWorkflow
from payments.workflows.merchant_onboarding import MerchantOnboardingWorkflow, workflow_id
from payments.workflows.merchant_webhook_delivery import WebhookDeliveryWorkflow
from payments.workflows.payment import PaymentWorkflow
from payments.workflows.payment import workflow_id as payment_workflow_id
from payments.workflows.payment_catch_up import PaymentCatchUpWorkflow
from payments.workflows.payout import MerchantPayoutWorkflow, PayoutRunWorkflow
from payments.workflows.reconciliation import ReconciliationWorkflow
from payments.workflows.recovery import BalanceRecoveryWorkflow, RecoveryRunWorkflow
from payments.workflows.refund import RefundSettlementWorkflow, RefundWorkflow
from payments.workflows.stripe_balance import StripeBalanceWorkflow
from tests.services import eventually, fresh_key
from tests.workflows.conftest import start_time_skipping
from tests.workflows.test_dispute_workflow import WITHDRAWAL, FakeDispute
from tests.workflows.test_merchant_onboarding import FakeStripeAndDb, _merchant
from tests.workflows.test_merchant_webhook_delivery_workflow import FakeReceiver, delivery
from tests.workflows.test_payment_workflow import FakePaymentSteps, _declined, _refuse_capture, payment_request
from tests.workflows.test_payout_workflow import FakePayoutSteps, refuse_transfer
from tests.workflows.test_reconciliation_workflow import WATERMARK, FakeReconciler, SlicedReconciler
from tests.workflows.test_recovery_workflow import FakeRecovery
from tests.workflows.test_refund_workflow import FakeRefund, refund_request

HISTORIES = Path(__file__).with_name("histories")
# Payments and scheduled payouts recorded since the "stripe-local-activities" patch (a Stripe call's
# first attempt as a local activity); the names without the suffix were recorded before it.
STRIPE_LOCAL = "_stripe_local"
# Payments recorded since the "money-after-durable-input" and "read-back-before-compensating" patches.
DURABLE = "_durable"
Drive = Callable[[WorkflowHandle[Any, Any]], Awaitable[None]]


@activity.defn(name="check_stripe_balance")
async def _balance_off() -> list[StripeBalanceCheck]:
    return [StripeBalanceCheck("usd", 10_000, 0, 10_500, 200, -300)]


def _refuse(_: object) -> str:
    raise ApplicationError("country not supported", type="StripeRequestRefused", non_retryable=True)


def _init_then(update: str | None) -> Drive:
    async def drive(handle: WorkflowHandle[Any, Any]) -> None:
        await handle.execute_update(PaymentWorkflow.init, InitRequest("fp"))
        if update == "confirm":
            await handle.execute_update(PaymentWorkflow.confirm, ConfirmRequest())
        elif update == "cancel":
            await handle.execute_update(PaymentWorkflow.cancel)

    return drive


def _init_then_stripe_event(event_type: str) -> Drive:
    """Stripe reports the payment moved (a capture from its dashboard): the workflow reads it back."""

    async def drive(handle: WorkflowHandle[Any, Any]) -> None:
        await handle.execute_update(PaymentWorkflow.init, InitRequest("fp"))
        await handle.signal(PaymentWorkflow.stripe_event, StripePaymentEvent("evt_1", event_type, "pi_1", "succeeded"))

    return drive


async def _authenticate_then_confirm(handle: WorkflowHandle[Any, Any]) -> None:
    """3-D Secure: Stripe's webhook, the read-back, then the customer's confirm."""
    await handle.execute_update(PaymentWorkflow.init, InitRequest("fp"))
    event = StripePaymentEvent("evt_1", "payment_intent.amount_capturable_updated", "pi_1", "requires_capture")
    await handle.signal(PaymentWorkflow.stripe_event, event)
    await eventually(
        lambda: handle.query(PaymentWorkflow.status),
        lambda view: view is not None and view.status == "authorized",
        "authenticated",
    )
    await handle.execute_update(PaymentWorkflow.confirm, ConfirmRequest())


async def _another_card(handle: WorkflowHandle[Any, Any]) -> None:
    """Declined at init, then another card: authorized on the same PaymentIntent and captured."""
    await handle.execute_update(PaymentWorkflow.init, InitRequest("fp"))
    await handle.execute_update(PaymentWorkflow.confirm, ConfirmRequest(card=AnotherCard("pm_card_mastercard")))


def _authentication_required(_: object) -> Authorization:
    redirect = RedirectToUrl("https://stripe.test/3d_secure_2/hosted?payment_intent=pi_1", "https://shop.test/checkout")
    return Authorization("pi_1", "requires_action", client_secret="pi_1_secret_s", redirect=redirect)


def _evidence_then(submit: bool, webhook: bool) -> Drive:
    async def drive(handle: WorkflowHandle[Any, Any]) -> None:
        await handle.execute_update(DisputeWorkflow.submit_evidence, DisputeEvidence("Signed receipt", submit))
        if webhook:
            closed = StripeDisputeEvent("evt_1", "charge.dispute.closed", "dp_1")
            await handle.signal(DisputeWorkflow.stripe_event, closed)

    return drive


async def _accept(handle: WorkflowHandle[Any, Any]) -> None:
    await handle.execute_update(DisputeWorkflow.accept)


def _withdrawn_later(fake: FakeDispute) -> Drive:
    """Stripe takes the money after the dispute opened: its funds_withdrawn webhook, then acceptance."""

    async def drive(handle: WorkflowHandle[Any, Any]) -> None:
        await eventually(lambda: handle.query(DisputeWorkflow.status), lambda v: v is not None, "recorded")
        fake.stripe = dataclasses.replace(fake.stripe, withdrawal=WITHDRAWAL)
        await handle.signal(
            DisputeWorkflow.stripe_event, StripeDisputeEvent("evt_2", "charge.dispute.funds_withdrawn", "dp_1")
        )
        await eventually(
            lambda: handle.query(DisputeWorkflow.status), lambda v: v is not None and v.withdrawn, "withdrawn"
        )
        await handle.execute_update(DisputeWorkflow.accept)

    return drive


async def _refund_webhook(handle: WorkflowHandle[Any, Any]) -> None:
    await handle.signal(
        RefundSettlementWorkflow.stripe_event, StripeRefundEvent("evt_1", "charge.refund.updated", "re_1")
    )


def _refund_at_stripe(status: str, *stripe: str) -> FakeRefund:
    """A refund Stripe accepted earlier (`status` in our row) whose next reads say `stripe`."""
    fake = FakeRefund(*stripe)
    fake.row = RefundView("rf_1", "tx_1", 400, "usd", status, None, "pi_1", stripe_refund_id="re_1")
    return fake


async def _retry_now(handle: WorkflowHandle[Any, Any]) -> None:
    await handle.signal(WebhookDeliveryWorkflow.retry_now)


async def _record(
    env: WorkflowEnvironment,
    name: str,
    workflow: Any,
    activities: list[Any],
    arg: Any,
    workflow_id: str,
    drive: Drive | None = None,
) -> None:
    path = HISTORIES / f"{name}.json"
    if path.exists():
        return
    queue = f"record-{fresh_key()}"
    async with Worker(env.client, task_queue=queue, workflows=workflows(), activities=activities):
        args = [] if arg is None else [arg]  # None: a workflow that takes no input
        handle = await env.client.start_workflow(workflow.run, args=args, id=workflow_id, task_queue=queue)
        if drive:
            await drive(handle)
        try:
            await handle.result()
        except WorkflowFailureError:
            pass  # a failed workflow is a history worth keeping too
        history = await handle.fetch_history()
    path.write_text(history.to_json())
    print(f"recorded {name}")


async def record() -> None:
    env = await start_time_skipping()
    async with env:
        for name, fake, merchant in (
            ("merchant_onboarding_new_account", FakeStripeAndDb(lambda _: "acct_recorded"), _merchant()),
            ("merchant_onboarding_known_account", FakeStripeAndDb(lambda _: "unused"), _merchant("acct_k")),
            ("merchant_onboarding_refused", FakeStripeAndDb(_refuse), _merchant()),
        ):
            await _record(
                env, name, MerchantOnboardingWorkflow, fake.activities(), merchant, workflow_id(merchant.merchant_id)
            )
        for name, steps, drive in (
            ("payment_captured", FakePaymentSteps(), _init_then("confirm")),
            ("payment_declined", FakePaymentSteps(authorize=_declined), _init_then(None)),
            ("payment_canceled", FakePaymentSteps(), _init_then("cancel")),
            ("payment_expired", FakePaymentSteps(), _init_then(None)),
            ("payment_authenticated", FakePaymentSteps(authorize=_authentication_required), _authenticate_then_confirm),
        ):
            request = payment_request()
            await _record(
                env,
                name + STRIPE_LOCAL,
                PaymentWorkflow,
                steps.activities(),
                request,
                payment_workflow_id(request.user_id, request.idempotency_key),
                drive,
            )
        for name, steps, drive in (
            ("payment_captured", FakePaymentSteps(), _init_then("confirm")),
            # since the "stripe-fee-on-capture" patch: the capture reads Stripe's fee
            ("payment_captured_with_stripe_fee", FakePaymentSteps(), _init_then("confirm")),
            ("payment_canceled", FakePaymentSteps(), _init_then("cancel")),
            ("payment_expired", FakePaymentSteps(), _init_then(None)),
            (
                "payment_capture_refused_read_back",
                FakePaymentSteps(capture=_refuse_capture, intent_status=lambda: "succeeded"),
                _init_then("confirm"),
            ),
            (
                "payment_captured_at_stripe",
                FakePaymentSteps(intent_status=lambda: "succeeded"),
                _init_then_stripe_event("payment_intent.succeeded"),
            ),
        ):
            request = payment_request()
            await _record(
                env,
                name + DURABLE,
                PaymentWorkflow,
                steps.activities(),
                request,
                payment_workflow_id(request.user_id, request.idempotency_key),
                drive,
            )
        for name, steps, drive in (  # since the "another-card-after-decline" patch
            ("payment_another_card_captured", FakePaymentSteps(authorize=_declined), _another_card),
            ("payment_another_card_given_up", FakePaymentSteps(authorize=_declined), _init_then("cancel")),
            ("payment_another_card_expired", FakePaymentSteps(authorize=_declined), _init_then(None)),
        ):
            request = dataclasses.replace(payment_request(), max_card_attempts=3)
            await _record(
                env,
                name,
                PaymentWorkflow,
                steps.activities(),
                request,
                payment_workflow_id(request.user_id, request.idempotency_key),
                drive,
            )
        behind = FakePaymentSteps(intent_status=lambda: "succeeded")
        behind.view = PaymentView("tx_1", "usr_1", "mer_1", 1000, 0, 0, "usd", "authorized", "k")
        catch_up = PaymentCatchUp("tx_1", "pi_1")
        await _record(env, "payment_catch_up", PaymentCatchUpWorkflow, behind.activities(), catch_up, "catch-up")
        for name, payouts, payout in (
            ("payout_paid", FakePayoutSteps({"m1": 975}), PayoutRequest("m1", "2026-11-24", "2026-11-24")),
            ("payout_refused_by_stripe", FakePayoutSteps({"m1": 975}, refuse_transfer), PayoutRequest("m1", "k", "p")),
            ("payout_nothing_available", FakePayoutSteps({}), PayoutRequest("m1", "k", "p")),
        ):
            await _record(env, name, MerchantPayoutWorkflow, payouts.activities(), payout, f"payout:{name}")
        run = PayoutRunInput("daily", concurrency=2, page_size=5, hold_seconds=0, period="2026-11-24")
        three = FakePayoutSteps({"m1": 100, "m2": 200, "m3": 300})
        await _record(env, "payout_run" + STRIPE_LOCAL, PayoutRunWorkflow, three.activities(), run, "payout-run:daily")
        disputes: list[tuple[str, FakeDispute, Drive | None]] = [
            ("dispute_won_after_evidence", FakeDispute("won"), _evidence_then(True, webhook=True)),
            ("dispute_evidence_kept_until_deadline", FakeDispute("lost"), _evidence_then(False, webhook=False)),
            ("dispute_accepted", FakeDispute(), _accept),
            ("dispute_deadline_passed", FakeDispute(), None),
        ]
        later = FakeDispute(withdrawn=False)
        disputes += [  # since the "dispute-funds-from-stripe" patch
            ("dispute_won_funds_from_stripe", FakeDispute("won"), _evidence_then(True, webhook=True)),
            ("dispute_withdrawn_later", later, _withdrawn_later(later)),
        ]
        opened = DisputeRequest("dp_1", 1500, 6 * 3600)
        for name, dispute, dispute_drive in disputes:
            await _record(env, name, DisputeWorkflow, dispute.activities(), opened, f"dispute:{name}", dispute_drive)
        await _record(
            env, "refund_succeeded", RefundWorkflow, FakeRefund().activities(), refund_request(), "refund:tx_1:k"
        )
        await _record(
            env,
            "refund_pending_at_stripe",
            RefundWorkflow,
            FakeRefund("pending").activities(),
            refund_request(),
            "refund:tx_1:pending",
        )
        settlement = RefundSettlement("rf_1", "tx_1", "re_1", 3600)
        refund_paths: list[tuple[str, FakeRefund, Drive | None]] = [
            ("refund_settlement_read_back", _refund_at_stripe("pending", "pending", "succeeded"), None),
            ("refund_settlement_failed_after_success", _refund_at_stripe("succeeded", "failed"), _refund_webhook),
        ]
        for name, refund_fake, refund_drive in refund_paths:
            await _record(env, name, RefundSettlementWorkflow, refund_fake.activities(), settlement, name, refund_drive)
        refused = FakeRecovery({"m1": 900}, refused=("tr_1",))
        recovery = RecoveryRequest("m1", "recovery:m1:2026-11-25", 0)
        await _record(
            env, "recovery_reversed_and_refused", BalanceRecoveryWorkflow, refused.activities(), recovery, "r1"
        )
        deficits = FakeRecovery({"m1": 100, "m3": 700})
        recovery_run = RecoveryRunInput(0, page_size=5, day="2026-11-25")
        await _record(env, "recovery_run", RecoveryRunWorkflow, deficits.activities(), recovery_run, "recovery-run")
        short_window = dataclasses.replace(delivery(), retry_for_seconds=4 * 3600)  # the same path, fewer attempts
        webhooks: list[tuple[str, FakeReceiver, WebhookDeliveryRequest, Drive | None]] = [
            (
                "webhook_delivered_after_retries",
                FakeReceiver(lambda n: "delivered" if n == 3 else "retry"),
                delivery(),
                None,
            ),
            ("webhook_failed_after_window", FakeReceiver(lambda n: "retry"), short_window, None),
            (
                "webhook_retried_by_signal",
                FakeReceiver(lambda n: "delivered" if n == 2 else "retry"),
                delivery(),
                _retry_now,
            ),
        ]
        for name, receiver, attempt, steer in webhooks:
            await _record(env, name, WebhookDeliveryWorkflow, receiver.activities(), attempt, f"webhook:{name}", steer)
        await _record(env, "stripe_balance_unexplained", StripeBalanceWorkflow, [_balance_off], None, "stripe-balance")
        scheduled = ReconciliationInput()  # as the Schedule starts it: no window given
        # before and after the reconcile-by-change patch, and since the three-way match (settlement)
        for name in ("reconciliation_scheduled", "reconciliation_from_watermark", "reconciliation_with_settlement"):
            await _record(env, name, ReconciliationWorkflow, FakeReconciler().activities(), scheduled, name)
        sliced = ReconciliationInput("rr_sliced", WATERMARK, WATERMARK)  # since each slice is an activity
        await _record(
            env, "reconciliation_slices_apart", ReconciliationWorkflow, SlicedReconciler().activities(), sliced, "rr"
        )


if __name__ == "__main__":
    asyncio.run(record())
