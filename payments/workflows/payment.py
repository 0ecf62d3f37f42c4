"""PaymentWorkflow, id `payment:{user_id}:{idempotency_key}`: the authorize/capture saga.

record the transaction -> authorize at Stripe -> (init update answers) -> [3-D Secure via a
Stripe webhook signal] -> wait for confirm, cancel or the authorization expiry -> capture and
post the ledger, or void.

Failure rules: a decline leaves the payment `declined` (open) while it may try another card: the
`confirm` update with a card confirms the same PaymentIntent again (`{tx_id}:authorize:{n}`) and,
authorized, captures at once; after `max_card_attempts` cards, a cancel or the order's expiry it
ends `failed` (a run from before the "another-card-after-decline" patch fails at the first). After a
Stripe success, the local step is retried until it lands (DB_STEP never gives up), so money is never
charged twice and never forgotten. A capture or void runs as an activity task, scheduled by the
workflow task that accepts the confirm or cancel: Stripe moves money only once that input is in the
history, never on an update the server holds only in memory. Where Stripe refuses a capture or a
void, the workflow reads the PaymentIntent back before it compensates, and records what Stripe
holds: never `canceled` while Stripe has the money. Stripe's `payment_intent.succeeded` and
`.canceled` webhooks make a waiting workflow read Stripe back too (a capture made outside our
confirm).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from payments.activities.payment_records import PaymentRecords
    from payments.activities.stripe_payments import StripePayments
    from payments.schema.messages import (
        AnotherCard,
        Authorization,
        AuthorizeRequest,
        CaptureRequest,
        ConfirmRequest,
        InitRequest,
        PaymentIntentState,
        PaymentRequest,
        PaymentView,
        ReauthorizeRequest,
        StatusChange,
        StripeAhead,
        StripeCapture,
        StripePaymentEvent,
        VoidRequest,
    )
    from payments.schema.tables import OPEN_PAYMENT_STATUSES
    from payments.workflows import search_attributes as sa
    from payments.workflows.failures import failure_details, final_failure
    from payments.workflows.policies import DB_STEP
    from payments.workflows.stripe_steps import stripe_step

# Webhook event types that settle a 3-D Secure authentication.
AUTHENTICATED = ("payment_intent.amount_capturable_updated",)
AUTHENTICATION_FAILED = ("payment_intent.payment_failed", "payment_intent.canceled")
# Webhook event types that say the payment moved at Stripe: captured or voided, maybe outside our
# own calls (a dashboard, a capture whose answer we lost).
MOVED_AT_STRIPE = ("payment_intent.succeeded", "payment_intent.canceled")
# What our Stripe webhook endpoint subscribes to (its `enabled_events`): only what a workflow acts on.
WEBHOOK_EVENTS = AUTHENTICATED + AUTHENTICATION_FAILED + ("payment_intent.succeeded",)
# The patches: money moves (capture, void) as activity tasks, scheduled with the accepted input;
# a refused capture or void reads Stripe back before compensating.
MONEY_AFTER_DURABLE_INPUT = "money-after-durable-input"
READ_BACK_BEFORE_COMPENSATING = "read-back-before-compensating"
# A payment that moved at Stripe wakes the waiting workflow (a run from before ignored such signals).
FOLLOW_MOVES_AT_STRIPE = "follow-moves-at-stripe"
# The capture reads Stripe's fee off its charge's balance transaction, and the fee is posted with it.
STRIPE_FEE_ON_CAPTURE = "stripe-fee-on-capture"
# A decline leaves the payment open for another card on the same PaymentIntent.
ANOTHER_CARD = "another-card-after-decline"


def workflow_id(user_id: str, idempotency_key: str) -> str:
    return f"payment:{user_id}:{idempotency_key}"


@workflow.defn
class PaymentWorkflow:
    @workflow.init
    def __init__(self, request: PaymentRequest) -> None:
        self._request = request
        self._view: PaymentView | None = None
        self._payment_intent_id: str | None = None
        self._decided = False  # the authorization outcome is known: init may answer
        self._settled = False  # captured, voided or failed: confirm and cancel may answer
        self._inits = 0
        self._confirm: ConfirmRequest | None = None
        self._cancel = False
        self._authorization: Authorization | None = None  # Stripe's answer (3-D Secure: where to authenticate)
        self._authentication: StripePaymentEvent | None = None
        self._authenticated = False  # Stripe confirmed the 3-D Secure authentication
        self._moved_at_stripe = False  # Stripe says the payment was captured or voided: read it back
        self._refused_confirms = 0  # captures Stripe refused while the authorization stayed
        self._card_attempts = 1  # cards tried on the PaymentIntent (the first is init's)
        self._answered_attempts = 1  # cards whose outcome is recorded: a confirm with a card answers then
        self._another_card: ConfirmRequest | None = None  # a declined payment's next card, accepted

    @workflow.run
    async def run(self, request: PaymentRequest) -> PaymentView:
        view = await workflow.execute_local_activity_method(PaymentRecords.record_payment, request, **DB_STEP)
        if view.tx_id != request.tx_id:
            # The key already belongs to an older payment whose workflow has left Temporal.
            return self._finish(view)
        self._set_view(view)
        expires_at = workflow.now() + timedelta(seconds=request.authorization_expiry_seconds)

        await self._authorize()
        self._decided = True
        if self._status == "requires_action":
            await self._await_authentication(expires_at)
        while self._status == "declined":
            await self._await_another_card(expires_at)
            if self._status == "requires_action":
                await self._await_authentication(expires_at)
        if self._status == "authorized":
            await self._await_confirm_or_cancel(expires_at)
        self._finish(self._current)
        await workflow.wait_condition(workflow.all_handlers_finished)  # every update gets its answer
        return self._current

    # --- steps ---

    async def _authorize(self) -> None:
        request = self._request
        try:
            auth: Authorization = await stripe_step(
                StripePayments.authorize_payment,
                AuthorizeRequest(
                    request.tx_id,
                    request.merchant_id,
                    request.amount,
                    request.currency,
                    request.card_token,
                    request.return_url,
                    request.customer_id,
                    request.save_card,
                ),
            )
        except (ActivityError, ApplicationError) as error:  # a local activity raises the latter
            failure = final_failure(error)
            if failure is None:
                raise
            details = failure_details(failure)
            self._payment_intent_id = details.get("payment_intent_id")
            await self._card_refused(str(details.get("code") or failure.type), failure.message, self._payment_intent_id)
            return
        self._payment_intent_id = auth.payment_intent_id
        self._authorization = auth
        await self._record(
            StatusChange(
                request.tx_id,
                auth.status,
                "payment.authorized" if auth.status == "authorized" else None,
                payment_intent_id=auth.payment_intent_id,
                card_brand=auth.card_brand,
                card_last4=auth.card_last4,
            )
        )

    async def _await_authentication(self, expires_at: datetime) -> None:
        while True:
            if not await self._wait(lambda: self._authentication is not None or self._cancel, expires_at):
                await self._void("abandoned", "authorization_expired")
                return
            event = self._authentication
            if event is None:
                await self._void("requested_by_customer")
                return
            outcome = await self._authentication_outcome(event)
            if outcome is not None:
                break
            self._authentication = None  # Stripe still waits for the customer: so do we
        if outcome.status == "requires_capture":
            self._authenticated = True
            await self._record(StatusChange(self._request.tx_id, "authorized", "payment.authorized"))
        else:
            await self._card_refused(outcome.failure_code or "authentication_failed", outcome.failure_message)

    async def _card_refused(self, code: str, message: str | None, payment_intent_id: str | None = None) -> None:
        """The card was declined (or failed 3-D Secure): `declined` while another card may be tried
        on the PaymentIntent, else `failed`, final."""
        attempts_left = self._card_attempts < (self._request.max_card_attempts or 1)
        if workflow.patched(ANOTHER_CARD) and attempts_left and self._payment_intent_id is not None:
            status, event = "declined", "payment.declined"
        else:
            status, event = "failed", "payment.failed"
        await self._record(
            StatusChange(
                self._request.tx_id,
                status,
                event,
                payment_intent_id=payment_intent_id,
                failure_code=code,
                failure_message=message,
                card_attempts=self._card_attempts,
            )
        )

    async def _await_another_card(self, expires_at: datetime) -> None:
        """Declined: wait for another card (a confirm with one), a cancel or the order's expiry."""
        if not await self._wait(lambda: self._another_card is not None or self._cancel, expires_at):
            await self._close_declined("abandoned", "payment_expired")
            return
        confirm = self._another_card
        if confirm is None:
            await self._close_declined("requested_by_customer", "requested_by_customer")
            return
        assert confirm.card is not None  # the confirm validator holds it
        await self._reauthorize(confirm.card)
        self._another_card = None
        if self._status == "authorized":
            self._confirm = ConfirmRequest(confirm.amount)  # the customer asked to pay: capture now

    async def _reauthorize(self, card: AnotherCard) -> None:
        """Confirm the PaymentIntent again with another card, as an activity task scheduled by the
        workflow task that accepted the confirm: Stripe sees the card only once that is history."""
        assert self._payment_intent_id is not None
        attempt = self._card_attempts + 1
        self._authorization, self._authentication, self._authenticated = None, None, False
        request = ReauthorizeRequest(
            self._request.tx_id, self._payment_intent_id, attempt, card, self._request.return_url
        )
        try:
            auth: Authorization = await stripe_step(StripePayments.reauthorize_payment, request, in_workflow_task=False)
        except ActivityError as error:
            failure = final_failure(error)
            if failure is None:
                raise
            self._card_attempts = attempt
            await self._card_refused(str(failure_details(failure).get("code") or failure.type), failure.message)
            self._answered_attempts = attempt
            return
        self._authorization = auth
        change = StatusChange(
            self._request.tx_id,
            auth.status,
            "payment.authorized" if auth.status == "authorized" else None,
            card_brand=auth.card_brand,
            card_last4=auth.card_last4,
            card_attempts=attempt,
        )
        self._card_attempts = attempt
        await self._record(change)
        self._answered_attempts = attempt  # after the write: the confirm answers from the recorded outcome

    async def _close_declined(self, reason: str, failure_code: str) -> None:
        """The customer gave up, or the order expired: the PaymentIntent is canceled at Stripe (no
        card may be confirmed on it later) and the payment is `failed`, final."""
        assert self._payment_intent_id is not None
        void = VoidRequest(self._request.tx_id, self._payment_intent_id, reason)
        try:
            await stripe_step(StripePayments.void_payment, void, in_workflow_task=False)
        except ActivityError as error:
            if final_failure(error) is None:
                raise
            await self._follow_stripe(failure_code)  # confirmed outside our calls: record what Stripe holds
        if self._status == "declined":
            await self._record(StatusChange(self._request.tx_id, "failed", "payment.failed", failure_code=failure_code))

    async def _authentication_outcome(self, event: StripePaymentEvent) -> PaymentIntentState | None:
        """Stripe's own word on the PaymentIntent a webhook names (None: not settled yet). A
        webhook is only a hint that something changed: a signed event is not the object's state."""
        if not workflow.patched("read-back-stripe-event"):
            status = "requires_capture" if event.type in AUTHENTICATED else event.status
            return PaymentIntentState(event.payment_intent_id, status, event.failure_code, event.failure_message)
        state: PaymentIntentState = await stripe_step(StripePayments.read_payment_intent, event.payment_intent_id)
        return None if state.status == "requires_action" else state

    async def _await_confirm_or_cancel(self, expires_at: datetime) -> None:
        follow_moves = workflow.patched(FOLLOW_MOVES_AT_STRIPE)
        while True:
            if not await self._wait(
                lambda: self._confirm is not None or self._cancel or (follow_moves and self._moved_at_stripe),
                expires_at,
            ):
                await self._void("abandoned", "authorization_expired")
                return
            if self._confirm is not None:
                await self._capture(self._confirm.amount or self._request.amount)
                if self._status not in OPEN_PAYMENT_STATUSES:
                    return
                self._confirm = None  # refused while the authorization stands: answered, wait on
                self._refused_confirms += 1
            elif self._cancel:
                await self._void("requested_by_customer")
                return
            else:
                self._moved_at_stripe = False
                await self._follow_stripe()
                if self._status not in OPEN_PAYMENT_STATUSES:
                    return

    async def _capture(self, amount: int) -> None:
        assert self._payment_intent_id is not None
        capture = CaptureRequest(self._request.tx_id, self._payment_intent_id, amount)
        try:
            in_workflow_task = not workflow.patched(MONEY_AFTER_DURABLE_INPUT)
            if workflow.patched(STRIPE_FEE_ON_CAPTURE):
                received: StripeCapture = await stripe_step(
                    StripePayments.capture_payment_with_fee, capture, in_workflow_task=in_workflow_task
                )
            else:
                amount = await stripe_step(StripePayments.capture_payment, capture, in_workflow_task=in_workflow_task)
                received = StripeCapture(amount, None)
        except (ActivityError, ApplicationError) as error:  # a local activity raises the latter
            failure = final_failure(error)
            if failure is None:
                raise
            if workflow.patched(READ_BACK_BEFORE_COMPENSATING):
                await self._follow_stripe("capture_refused", failure.message)
                return
            await self._record(
                StatusChange(
                    self._request.tx_id,
                    "canceled",
                    "payment.canceled",
                    failure_code="capture_refused",
                    failure_message=failure.message,
                )
            )
            return
        # Captured at Stripe: from here the local write is retried until it lands, never undone.
        view = await workflow.execute_local_activity_method(
            PaymentRecords.record_capture,
            dataclasses.replace(capture, amount=received.amount, stripe_fee=received.stripe_fee),
            **DB_STEP,
        )
        self._set_view(view)

    async def _void(self, reason: str, failure_code: str | None = None) -> None:
        if self._payment_intent_id is not None:
            void = VoidRequest(self._request.tx_id, self._payment_intent_id, reason)
            try:
                await stripe_step(
                    StripePayments.void_payment, void, in_workflow_task=not workflow.patched(MONEY_AFTER_DURABLE_INPUT)
                )
            except (ActivityError, ApplicationError) as error:  # a local activity raises the latter
                if final_failure(error) is None:
                    raise
                if workflow.patched(READ_BACK_BEFORE_COMPENSATING):
                    await self._follow_stripe(failure_code)  # captured out of band: record the capture
                else:
                    workflow.logger.warning("void refused by Stripe; reconciliation will follow Stripe")
                return
        await self._record(StatusChange(self._request.tx_id, "canceled", "payment.canceled", failure_code=failure_code))

    async def _follow_stripe(self, failure_code: str | None = None, failure_message: str | None = None) -> None:
        """Read the PaymentIntent back and record what Stripe holds: its capture, or its void (with
        `failure_code`); a payment still authorized there stays authorized here."""
        assert self._payment_intent_id is not None
        try:
            state: PaymentIntentState = await stripe_step(StripePayments.read_payment_intent, self._payment_intent_id)
        except (ActivityError, ApplicationError) as error:  # a local activity raises the latter
            if final_failure(error) is None:
                raise
            # Stripe will not say (a revoked key, say): the row stays as it is, for reconciliation.
            workflow.logger.warning("the PaymentIntent could not be read back; reconciliation will follow Stripe")
            return
        ahead = StripeAhead(self._request.tx_id, state, failure_code, failure_message)
        self._set_view(await workflow.execute_local_activity_method(PaymentRecords.follow_stripe, ahead, **DB_STEP))

    # --- plumbing ---

    async def _wait(self, condition: Callable[[], bool], expires_at: datetime) -> bool:
        """Wait for `condition` until the authorization expires; False on expiry."""
        remaining = (expires_at - workflow.now()).total_seconds()
        try:
            await workflow.wait_condition(condition, timeout=max(remaining, 0.001))
        except TimeoutError:
            return bool(condition())
        return True

    async def _record(self, change: StatusChange) -> None:
        self._set_view(await workflow.execute_local_activity_method(PaymentRecords.record_status, change, **DB_STEP))

    def _set_view(self, view: PaymentView) -> None:
        if self._view is None or self._view.status != view.status:
            workflow.upsert_search_attributes([sa.PAYMENT_STATUS.value_set(view.status)])
        self._view = view

    def _finish(self, view: PaymentView) -> PaymentView:
        self._view = view
        self._decided = self._settled = True
        return view

    @property
    def _current(self) -> PaymentView:
        assert self._view is not None
        return self._view

    @property
    def _status(self) -> str:
        return self._view.status if self._view else "pending"

    @property
    def _capturable(self) -> bool:
        """Authorized, or authenticated by 3-D Secure with the `authorized` write in flight: the
        database (what GET shows) is written before this workflow sees the write's result."""
        return self._status == "authorized" or (self._status == "requires_action" and self._authenticated)

    # --- the API's handles on a running payment ---

    @workflow.update
    async def init(self, request: InitRequest) -> PaymentView:
        first = self._inits == 0
        self._inits += 1
        await workflow.wait_condition(lambda: self._decided)
        # A run that found the key's row from an earlier run answers for that payment: a replay too.
        older_payment = self._current.tx_id != self._request.tx_id
        return self._with_next_action(dataclasses.replace(self._current, replayed=not first or older_payment))

    def _with_next_action(self, view: PaymentView) -> PaymentView:
        """A payment waiting for 3-D Secure: where the customer authenticates (Stripe's answer)."""
        if self._authorization is None or view.status != "requires_action":
            return view
        auth = self._authorization
        return dataclasses.replace(view, client_secret=auth.client_secret, redirect=auth.redirect)

    @init.validator
    def _validate_init(self, request: InitRequest) -> None:
        if request.fingerprint != self._request.fingerprint:
            raise ApplicationError("This idempotency key was used with other parameters.", type="IdempotencyKeyReused")

    @workflow.update
    async def confirm(self, request: ConfirmRequest) -> PaymentView:
        if request.card is not None:
            return await self._pay_with_another_card(request)
        if self._confirm is None and not self._cancel:
            self._confirm = request
        return await self._captured()

    async def _pay_with_another_card(self, request: ConfirmRequest) -> PaymentView:
        """The card is authorized and captured (the answer waits for both), needs 3-D Secure (the
        answer says where), or is declined (CardDeclined: the payment is `declined` or `failed`)."""
        answered = self._answered_attempts
        self._another_card = request
        await workflow.wait_condition(lambda: self._answered_attempts > answered or self._settled)
        if self._status in ("declined", "failed"):
            raise ApplicationError(
                self._current.failure_message or "The card was declined.",
                {"status": self._status, "failure_code": self._current.failure_code},
                type="CardDeclined",
            )
        if self._status == "requires_action":
            return self._with_next_action(self._current)
        return await self._captured()

    async def _captured(self) -> PaymentView:
        """Wait for the accepted confirm's capture: the payment, or PaymentNotConfirmable."""
        refused = self._refused_confirms
        await workflow.wait_condition(
            lambda: self._settled or self._status == "confirmed" or self._refused_confirms > refused
        )
        if self._status != "confirmed":
            raise ApplicationError(
                f"The payment is {self._status}.", {"status": self._status}, type="PaymentNotConfirmable"
            )
        return self._current

    @confirm.validator
    def _validate_confirm(self, request: ConfirmRequest) -> None:
        if request.card is not None:  # another card: only for a declined payment, one at a time
            if self._status != "declined" or self._another_card is not None or self._cancel:
                raise ApplicationError(
                    f"Another card is for a declined payment; this one is {self._status}.",
                    {"status": self._status},
                    type="PaymentNotConfirmable",
                )
            self._check_capture_amount(request)
            return
        fixed = self._current.amount_captured if self._status == "confirmed" else None
        if self._confirm is not None:
            fixed = self._confirm.amount or self._request.amount
        if fixed is not None:  # a repeat gets the first confirm's answer, for the same amount only
            if (request.amount or self._request.amount) != fixed:
                raise ApplicationError(
                    f"This payment's capture amount is fixed at {fixed} by its first confirm.",
                    {"amount": fixed},
                    type="CaptureAmountFixed",
                )
            return
        if self._cancel or not self._capturable:
            raise ApplicationError(
                f"A {self._status} payment cannot be confirmed.", {"status": self._status}, type="PaymentNotConfirmable"
            )
        self._check_capture_amount(request)

    def _check_capture_amount(self, request: ConfirmRequest) -> None:
        if request.amount is not None and not 0 < request.amount <= self._request.amount:
            raise ApplicationError(
                f"The capture amount must be between 1 and the authorized {self._request.amount}.",
                type="InvalidCaptureAmount",
            )

    @workflow.update
    async def cancel(self) -> PaymentView:
        """Void an authorization (`canceled`), or give up on a declined payment (`failed`)."""
        given_up = "failed" if self._status == "declined" else "canceled"
        if self._confirm is None:
            self._cancel = True
        await workflow.wait_condition(lambda: self._settled)
        if self._status not in ("canceled", given_up):
            raise ApplicationError(
                f"The payment is {self._status}.", {"status": self._status}, type="PaymentNotCancelable"
            )
        return self._current

    @cancel.validator
    def _validate_cancel(self) -> None:
        if self._cancel or self._status == "canceled":
            return
        if (
            self._confirm is not None
            or self._another_card is not None
            or self._status not in ("authorized", "requires_action", "declined")
        ):
            raise ApplicationError(
                f"A {self._status} payment cannot be canceled.", {"status": self._status}, type="PaymentNotCancelable"
            )

    @workflow.signal
    def stripe_event(self, event: StripePaymentEvent) -> None:
        if event.payment_intent_id != self._payment_intent_id:
            return
        if event.type in AUTHENTICATED + AUTHENTICATION_FAILED:
            self._authentication = self._authentication or event
        if event.type in MOVED_AT_STRIPE and self._status == "authorized":
            self._moved_at_stripe = True

    @workflow.query
    def status(self) -> PaymentView | None:
        return self._view
