"""PaymentWorkflow's orchestration on the time-skipping server, activities stubbed by name."""

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from payments.schema.messages import (
    Authorization,
    AuthorizeRequest,
    CaptureRequest,
    ConfirmRequest,
    InitRequest,
    PaymentIntentState,
    PaymentRequest,
    PaymentView,
    ReauthorizeRequest,
    RedirectToUrl,
    StatusChange,
    StripeAhead,
    StripeCapture,
    StripePaymentEvent,
    VoidRequest,
)
from payments.workflows.payment import PaymentWorkflow, workflow_id
from tests.services import eventually, fresh_key

WEEK = 7 * 24 * 3600


def _declined(_: AuthorizeRequest) -> Authorization:
    raise ApplicationError(
        "Your card was declined.",
        {"payment_intent_id": "pi_d", "code": "generic_decline"},
        type="CardDeclined",
        non_retryable=True,
    )


class FakePaymentSteps:
    """Records every call; the database is a dict, Stripe a function."""

    def __init__(
        self,
        authorize: Callable[[AuthorizeRequest], Authorization] | None = None,
        capture: Callable[[CaptureRequest], int] | None = None,
        intent_status: Callable[[], str] = lambda: "requires_capture",
        void: Callable[[VoidRequest], None] | None = None,
        reauthorize: Callable[[ReauthorizeRequest], Authorization] | None = None,
    ) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.view: PaymentView | None = None
        self._authorize = authorize or (lambda r: Authorization("pi_1", "authorized", "visa", "4242"))
        self._capture = capture or (lambda r: r.amount)
        self._intent_status = intent_status
        self._void = void or (lambda r: None)
        self._reauthorize = reauthorize or (lambda r: Authorization("pi_d", "authorized", "mastercard", "4444"))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def activities(self) -> list[Any]:
        fake = self

        @activity.defn(name="record_payment")
        async def record_payment(request: PaymentRequest) -> PaymentView:
            fake.calls.append(("record_payment", request))
            if fake.view is not None and fake.view.idempotency_key == request.idempotency_key:
                return fake.view  # UNIQUE(user_id, idempotency_key): the key's row from an earlier run
            fake.view = PaymentView(
                request.tx_id,
                request.user_id,
                request.merchant_id,
                request.amount,
                0,
                0,
                request.currency,
                "pending",
                request.idempotency_key,
            )
            return fake.view

        @activity.defn(name="record_status")
        async def record_status(change: StatusChange) -> PaymentView:
            fake.calls.append(("record_status", change))
            assert fake.view is not None
            attempts = change.card_attempts or fake.view.card_attempts
            fake.view = dataclasses.replace(
                fake.view, status=change.status, failure_code=change.failure_code, card_attempts=attempts
            )
            return fake.view

        @activity.defn(name="record_capture")
        async def record_capture(capture: CaptureRequest) -> PaymentView:
            fake.calls.append(("record_capture", capture))
            assert fake.view is not None
            fake.view = dataclasses.replace(fake.view, status="confirmed", amount_captured=capture.amount)
            return fake.view

        @activity.defn(name="authorize_payment")
        async def authorize_payment(request: AuthorizeRequest) -> Authorization:
            fake.calls.append(("authorize_payment", request))
            return fake._authorize(request)

        @activity.defn(name="reauthorize_payment")
        async def reauthorize_payment(request: ReauthorizeRequest) -> Authorization:
            fake.calls.append(("reauthorize_payment", request))
            return fake._reauthorize(request)

        @activity.defn(name="capture_payment")
        async def capture_payment(request: CaptureRequest) -> int:
            fake.calls.append(("capture_payment", request))
            return fake._capture(request)

        @activity.defn(name="capture_payment_with_fee")
        async def capture_payment_with_fee(request: CaptureRequest) -> StripeCapture:
            fake.calls.append(("capture_payment", request))
            amount = fake._capture(request)
            return StripeCapture(amount, amount * 290 // 10_000 + 30)

        @activity.defn(name="void_payment")
        async def void_payment(request: VoidRequest) -> None:
            fake.calls.append(("void_payment", request))
            fake._void(request)

        @activity.defn(name="read_payment_intent")
        async def read_payment_intent(payment_intent_id: str) -> PaymentIntentState:
            fake.calls.append(("read_payment_intent", payment_intent_id))
            status = fake._intent_status()
            received = fake.view.amount if fake.view and status == "succeeded" else 0
            return PaymentIntentState(payment_intent_id, status, amount_received=received)

        @activity.defn(name="follow_stripe")
        async def follow_stripe(ahead: StripeAhead) -> PaymentView:
            """As PaymentRecords.follow_stripe: a capture recorded whatever the row says, a void
            only over an open row."""
            fake.calls.append(("follow_stripe", ahead))
            assert fake.view is not None
            if ahead.intent.status == "succeeded" and fake.view.amount_captured == 0:
                fake.view = dataclasses.replace(
                    fake.view, status="confirmed", amount_captured=ahead.intent.amount_received
                )
            elif ahead.intent.status == "canceled" and fake.view.status in ("pending", "requires_action", "authorized"):
                fake.view = dataclasses.replace(
                    fake.view, status="canceled", failure_code=ahead.failure_code or "canceled_at_stripe"
                )
            return fake.view

        return [
            record_payment,
            record_status,
            record_capture,
            authorize_payment,
            reauthorize_payment,
            capture_payment,
            capture_payment_with_fee,
            void_payment,
            read_payment_intent,
            follow_stripe,
        ]


def payment_request(amount: int = 1000) -> PaymentRequest:
    key = fresh_key()
    return PaymentRequest(f"tx_{key}", "usr_1", "mer_1", amount, "usd", "pm_card_visa", key, "fp", WEEK)


async def start(env: WorkflowEnvironment, queue: str, request: PaymentRequest, **options: Any) -> WorkflowHandle:
    return await env.client.start_workflow(
        PaymentWorkflow.run,
        request,
        id=workflow_id(request.user_id, request.idempotency_key),
        task_queue=queue,
        **options,
    )


async def init_with_start(env: WorkflowEnvironment, queue: str, request: PaymentRequest) -> PaymentView:
    """As the API starts a payment: the init update rides on the start, so the first workflow task
    sees it (a workflow that ends in that task is not sent back to redo its local activities)."""
    start_op = WithStartWorkflowOperation(
        PaymentWorkflow.run,
        request,
        id=workflow_id(request.user_id, request.idempotency_key),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        task_queue=queue,
    )
    return await env.client.execute_update_with_start_workflow(
        PaymentWorkflow.init, InitRequest("fp"), start_workflow_operation=start_op
    )


async def test_authorize_then_capture(time_skipping_env: WorkflowEnvironment, queue: str) -> None:
    fake = FakePaymentSteps()
    async with Worker(
        time_skipping_env.client, task_queue=queue, workflows=[PaymentWorkflow], activities=fake.activities()
    ):
        handle = await start(time_skipping_env, queue, payment_request())
        first = await handle.execute_update(PaymentWorkflow.init, InitRequest("fp"))
        again = await handle.execute_update(PaymentWorkflow.init, InitRequest("fp"))
        assert first.status == "authorized" and not first.replayed and again.replayed
        confirmed = await handle.execute_update(PaymentWorkflow.confirm, ConfirmRequest(600))
        assert confirmed.status == "confirmed" and confirmed.amount_captured == 600
        assert (await handle.result()).status == "confirmed"
    assert fake.names() == ["record_payment", "authorize_payment", "record_status", "capture_payment", "record_capture"]


async def test_init_with_another_fingerprint_is_rejected(
    own_time_skipping_env: WorkflowEnvironment, queue: str
) -> None:
    async with Worker(
        own_time_skipping_env.client,
        task_queue=queue,
        workflows=[PaymentWorkflow],
        activities=FakePaymentSteps().activities(),
    ):
        handle = await start(own_time_skipping_env, queue, payment_request())
        with pytest.raises(WorkflowUpdateFailedError) as rejected:
            await handle.execute_update(PaymentWorkflow.init, InitRequest("another"))
        assert isinstance(rejected.value.cause, ApplicationError)
        assert rejected.value.cause.type == "IdempotencyKeyReused"


async def test_an_unconfirmed_authorization_is_voided_when_it_expires(
    time_skipping_env: WorkflowEnvironment, queue: str
) -> None:
    fake = FakePaymentSteps()
    async with Worker(
        time_skipping_env.client, task_queue=queue, workflows=[PaymentWorkflow], activities=fake.activities()
    ):
        handle = await start(time_skipping_env, queue, payment_request())
        assert (await handle.execute_update(PaymentWorkflow.init, InitRequest("fp"))).status == "authorized"
        started = (await handle.describe()).start_time  # the expiry counts from the start, not from now
        result = await handle.result()  # the test server skips the 7-day timer
        assert await time_skipping_env.get_current_time() - started >= timedelta(seconds=WEEK)
    assert result.status == "canceled" and result.failure_code == "authorization_expired"
    voids = [call for name, call in fake.calls if name == "void_payment"]
    assert voids == [VoidRequest(result.tx_id, "pi_1", "abandoned")]
    assert "capture_payment" not in fake.names()


async def test_a_decline_ends_failed_without_capture_or_void(
    time_skipping_env: WorkflowEnvironment, queue: str
) -> None:
    fake = FakePaymentSteps(authorize=_declined)
    async with Worker(
        time_skipping_env.client, task_queue=queue, workflows=[PaymentWorkflow], activities=fake.activities()
    ):
        request = payment_request()
        view = await init_with_start(time_skipping_env, queue, request)
        assert view.status == "failed" and view.failure_code == "generic_decline"
        handle = time_skipping_env.client.get_workflow_handle(
            workflow_id(request.user_id, request.idempotency_key), result_type=PaymentView
        )
        assert (await handle.result()).status == "failed"
    assert fake.names() == ["record_payment", "authorize_payment", "record_status"]


async def test_a_run_that_finds_an_older_payment_for_the_key_answers_init_as_a_replay(
    time_skipping_env: WorkflowEnvironment, queue: str
) -> None:
    """The first run (declined) has closed; a repeat of the key starts a second run, as the API's
    update-with-start does, which finds the first payment's row: a replay, and no second authorize."""
    fake = FakePaymentSteps(authorize=_declined)
    async with Worker(
        time_skipping_env.client, task_queue=queue, workflows=[PaymentWorkflow], activities=fake.activities()
    ):
        first = payment_request()
        assert (await (await start(time_skipping_env, queue, first)).result()).status == "failed"
        repeat = dataclasses.replace(first, tx_id=f"tx_{fresh_key()}")
        view = await init_with_start(time_skipping_env, queue, repeat)
        assert view.replayed and view.tx_id == first.tx_id and view.status == "failed"
    assert fake.names() == ["record_payment", "authorize_payment", "record_status", "record_payment"]


async def test_cancel_voids_and_a_later_confirm_is_rejected(time_skipping_env: WorkflowEnvironment, queue: str) -> None:
    fake = FakePaymentSteps()
    async with Worker(
        time_skipping_env.client, task_queue=queue, workflows=[PaymentWorkflow], activities=fake.activities()
    ):
        handle = await start(time_skipping_env, queue, payment_request())
        await handle.execute_update(PaymentWorkflow.init, InitRequest("fp"))
        assert (await handle.execute_update(PaymentWorkflow.cancel)).status == "canceled"
        assert (await handle.result()).status == "canceled"
    assert "void_payment" in fake.names() and "capture_payment" not in fake.names()


def _refuse_capture(_: CaptureRequest) -> int:
    raise ApplicationError(
        "Keys for idempotent requests can only be used with the same parameters",
        type="StripeRequestRefused",
        non_retryable=True,
    )


def _refuse_void(_: VoidRequest) -> None:
    raise ApplicationError(
        "PaymentIntent pi_1 is succeeded, not canceled", type="StripeStateConflict", non_retryable=True
    )


async def test_a_capture_stripe_refuses_compensates_to_canceled_once_stripe_says_canceled(
    time_skipping_env: WorkflowEnvironment, queue: str
) -> None:
    fake = FakePaymentSteps(capture=_refuse_capture, intent_status=lambda: "canceled")
    async with Worker(
        time_skipping_env.client, task_queue=queue, workflows=[PaymentWorkflow], activities=fake.activities()
    ):
        handle = await start(time_skipping_env, queue, payment_request())
        await handle.execute_update(PaymentWorkflow.init, InitRequest("fp"))
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(PaymentWorkflow.confirm, ConfirmRequest())
        result = await handle.result()
    assert result.status == "canceled" and result.failure_code == "capture_refused"
    assert "record_capture" not in fake.names()
    assert fake.names()[-2:] == ["read_payment_intent", "follow_stripe"]  # Stripe's word first


async def test_a_refused_capture_that_stripe_holds_is_recorded_as_captured_never_canceled(
    time_skipping_env: WorkflowEnvironment, queue: str
) -> None:
    """A 4xx on capture (an idempotency_error, say) while Stripe has the money: the read-back
    records the capture; the payment is never canceled."""
    fake = FakePaymentSteps(capture=_refuse_capture, intent_status=lambda: "succeeded")
    async with Worker(
        time_skipping_env.client, task_queue=queue, workflows=[PaymentWorkflow], activities=fake.activities()
    ):
        handle = await start(time_skipping_env, queue, payment_request(1200))
        await handle.execute_update(PaymentWorkflow.init, InitRequest("fp"))
        confirmed = await handle.execute_update(PaymentWorkflow.confirm, ConfirmRequest())
        result = await handle.result()
    assert (confirmed.status, confirmed.amount_captured) == ("confirmed", 1200)
    assert result.status == "confirmed"
    assert not [c for name, c in fake.calls if name == "record_status" and c.status == "canceled"]


async def test_a_refused_capture_while_the_authorization_stands_answers_and_waits_for_another_confirm(
    time_skipping_env: WorkflowEnvironment, queue: str
) -> None:
    refusals = [_refuse_capture]
    fake = FakePaymentSteps(capture=lambda r: refusals.pop()(r) if refusals else r.amount)
    async with Worker(
        time_skipping_env.client, task_queue=queue, workflows=[PaymentWorkflow], activities=fake.activities()
    ):
        handle = await start(time_skipping_env, queue, payment_request())
        await handle.execute_update(PaymentWorkflow.init, InitRequest("fp"))
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(PaymentWorkflow.confirm, ConfirmRequest())
        assert getattr(await handle.query(PaymentWorkflow.status), "status", None) == "authorized"
        assert (await handle.execute_update(PaymentWorkflow.confirm, ConfirmRequest())).status == "confirmed"
    assert fake.names().count("capture_payment") == 2


async def test_an_expiry_void_that_finds_the_payment_captured_records_the_capture(
    time_skipping_env: WorkflowEnvironment, queue: str
) -> None:
    fake = FakePaymentSteps(void=_refuse_void, intent_status=lambda: "succeeded")
    async with Worker(
        time_skipping_env.client, task_queue=queue, workflows=[PaymentWorkflow], activities=fake.activities()
    ):
        handle = await start(time_skipping_env, queue, payment_request(700))
        await handle.execute_update(PaymentWorkflow.init, InitRequest("fp"))
        result = await handle.result()  # the test server skips the 7-day timer
    assert (result.status, result.amount_captured) == ("confirmed", 700)
    assert "capture_payment" not in fake.names()


async def test_stripe_reporting_a_capture_makes_the_waiting_workflow_record_it(
    time_skipping_env: WorkflowEnvironment, queue: str
) -> None:
    """`payment_intent.succeeded` (a capture outside our confirm): read back, recorded, no capture
    call of ours; a stale event (Stripe still says requires_capture) changes nothing."""
    stripe_says = ["requires_capture", "succeeded"]
    fake = FakePaymentSteps(intent_status=lambda: stripe_says.pop(0))
    succeeded = StripePaymentEvent("evt_1", "payment_intent.succeeded", "pi_1", "succeeded")
    async with Worker(
        time_skipping_env.client, task_queue=queue, workflows=[PaymentWorkflow], activities=fake.activities()
    ):
        handle = await start(time_skipping_env, queue, payment_request(900))
        await handle.execute_update(PaymentWorkflow.init, InitRequest("fp"))
        await handle.signal(PaymentWorkflow.stripe_event, succeeded)

        async def reads() -> int:
            return fake.names().count("read_payment_intent")

        await eventually(reads, lambda n: n == 1, "the first read")
        assert getattr(await handle.query(PaymentWorkflow.status), "status", None) == "authorized"
        await handle.signal(PaymentWorkflow.stripe_event, dataclasses.replace(succeeded, event_id="evt_2"))
        result = await handle.result()
    assert (result.status, result.amount_captured) == ("confirmed", 900)
    assert "capture_payment" not in fake.names()


async def test_the_first_confirm_fixes_the_capture_amount(time_skipping_env: WorkflowEnvironment, queue: str) -> None:
    """While the first confirm's capture is at Stripe, a repeat with the same amount joins it and
    one with another amount (or none: all of it) is refused; Stripe sees one capture."""
    capturing, release = asyncio.Event(), asyncio.Event()
    fake = FakePaymentSteps()
    activities = fake.activities()
    original = next(a for a in activities if a.__name__ == "capture_payment_with_fee")

    @activity.defn(name="capture_payment_with_fee")
    async def slow_capture(request: CaptureRequest) -> StripeCapture:
        capturing.set()
        await release.wait()
        captured: StripeCapture = await original(request)
        return captured

    activities = [a for a in activities if a is not original] + [slow_capture]
    async with Worker(time_skipping_env.client, task_queue=queue, workflows=[PaymentWorkflow], activities=activities):
        handle = await start(time_skipping_env, queue, payment_request())
        await handle.execute_update(PaymentWorkflow.init, InitRequest("fp"))
        first = await handle.start_update(
            PaymentWorkflow.confirm, ConfirmRequest(400), wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        await capturing.wait()
        for other in (ConfirmRequest(), ConfirmRequest(500)):
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(PaymentWorkflow.confirm, other)
            assert isinstance(refused.value.cause, ApplicationError)
            assert refused.value.cause.type == "CaptureAmountFixed"
        repeat = await handle.start_update(
            PaymentWorkflow.confirm, ConfirmRequest(400), wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        release.set()
        assert (await first.result()).amount_captured == (await repeat.result()).amount_captured == 400
    assert fake.names().count("capture_payment") == 1


async def test_a_failing_database_write_after_capture_is_retried_never_recharged(
    time_skipping_env: WorkflowEnvironment, queue: str
) -> None:
    fake = FakePaymentSteps()
    activities = fake.activities()
    failures = iter([RuntimeError("connection reset"), RuntimeError("deadlock")])
    original = next(a for a in activities if a.__name__ == "record_capture")

    @activity.defn(name="record_capture")
    async def flaky_record_capture(capture: CaptureRequest) -> PaymentView:
        failure = next(failures, None)
        if failure:
            raise failure
        return await original(capture)

    activities = [a for a in activities if a is not original] + [flaky_record_capture]
    async with Worker(time_skipping_env.client, task_queue=queue, workflows=[PaymentWorkflow], activities=activities):
        handle = await start(time_skipping_env, queue, payment_request())
        await handle.execute_update(PaymentWorkflow.init, InitRequest("fp"))
        assert (await handle.execute_update(PaymentWorkflow.confirm, ConfirmRequest())).status == "confirmed"
    assert fake.names().count("capture_payment") == 1


async def test_confirm_is_accepted_while_the_3ds_authorization_is_being_recorded(
    time_skipping_env: WorkflowEnvironment, queue: str
) -> None:
    """The database says `authorized` (what GET shows) before the workflow sees that write's
    result; a confirm sent in that window must be accepted, not answered 409. The write is a local
    activity: an update reaches the workflow mid-write when the workflow task heartbeats, which a
    short task timeout makes quick."""
    writing, release = asyncio.Event(), asyncio.Event()
    fake = FakePaymentSteps(authorize=lambda r: Authorization("pi_1", "requires_action"))
    activities = fake.activities()
    original = next(a for a in activities if a.__name__ == "record_status")

    @activity.defn(name="record_status")
    async def slow_record_status(change: StatusChange) -> PaymentView:
        view = await original(change)
        if change.status == "authorized":
            writing.set()
            await release.wait()
        return view

    activities = [a for a in activities if a is not original] + [slow_record_status]
    async with Worker(time_skipping_env.client, task_queue=queue, workflows=[PaymentWorkflow], activities=activities):
        handle = await start(time_skipping_env, queue, payment_request(), task_timeout=timedelta(seconds=1))
        assert (await handle.execute_update(PaymentWorkflow.init, InitRequest("fp"))).status == "requires_action"
        await handle.signal(
            PaymentWorkflow.stripe_event,
            StripePaymentEvent("evt_1", "payment_intent.amount_capturable_updated", "pi_1", "requires_capture"),
        )
        await writing.wait()
        confirm = await handle.start_update(
            PaymentWorkflow.confirm, ConfirmRequest(), wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        release.set()
        assert (await confirm.result()).status == "confirmed"
    assert fake.names().count("capture_payment") == 1


async def test_a_webhook_is_acted_on_only_once_stripe_confirms_it(
    time_skipping_env: WorkflowEnvironment, queue: str
) -> None:
    """A signed `amount_capturable_updated` while Stripe still says requires_action changes nothing;
    the next event, once Stripe agrees, authorizes."""
    stripe_says = ["requires_action", "requires_capture"]
    fake = FakePaymentSteps(
        authorize=lambda r: Authorization("pi_1", "requires_action"), intent_status=lambda: stripe_says.pop(0)
    )
    capturable = StripePaymentEvent("evt_1", "payment_intent.amount_capturable_updated", "pi_1", "requires_capture")
    async with Worker(
        time_skipping_env.client, task_queue=queue, workflows=[PaymentWorkflow], activities=fake.activities()
    ):
        handle = await start(time_skipping_env, queue, payment_request())
        assert (await handle.execute_update(PaymentWorkflow.init, InitRequest("fp"))).status == "requires_action"
        await handle.signal(PaymentWorkflow.stripe_event, capturable)

        async def reads() -> int:
            return fake.names().count("read_payment_intent")

        async def status() -> str | None:
            view = await handle.query(PaymentWorkflow.status)
            return view.status if view else None

        await eventually(reads, lambda n: n == 1, "the first read-back")
        with pytest.raises(WorkflowUpdateFailedError):  # not authenticated yet: nothing to capture
            await handle.execute_update(PaymentWorkflow.confirm, ConfirmRequest())
        assert await status() == "requires_action"
        await handle.signal(PaymentWorkflow.stripe_event, dataclasses.replace(capturable, event_id="evt_2"))
        await eventually(status, lambda s: s == "authorized", "authorized once Stripe agrees")
        assert (await handle.execute_update(PaymentWorkflow.confirm, ConfirmRequest())).status == "confirmed"


async def test_3d_secure_init_answers_where_to_authenticate_and_moves_on_only_after_the_read_back(
    time_skipping_env: WorkflowEnvironment, queue: str
) -> None:
    """Init carries Stripe's next action and client secret to the customer's browser (and nowhere
    else: not the search attributes, not the result); the webhook then makes the workflow read the
    PaymentIntent back, and only Stripe's own word authorizes."""
    redirect = RedirectToUrl("https://stripe.test/3d_secure_2/hosted?payment_intent=pi_1", "https://shop.test/checkout")
    fake = FakePaymentSteps(
        authorize=lambda r: Authorization("pi_1", "requires_action", client_secret="pi_1_secret_s", redirect=redirect)
    )
    request = dataclasses.replace(payment_request(), return_url="https://shop.test/checkout")
    async with Worker(
        time_skipping_env.client, task_queue=queue, workflows=[PaymentWorkflow], activities=fake.activities()
    ):
        handle = await start(time_skipping_env, queue, request)
        view = await handle.execute_update(PaymentWorkflow.init, InitRequest("fp"))
        assert (view.status, view.client_secret, view.redirect) == ("requires_action", "pi_1_secret_s", redirect)
        await handle.signal(
            PaymentWorkflow.stripe_event,
            StripePaymentEvent("evt_1", "payment_intent.amount_capturable_updated", "pi_1", "requires_capture"),
        )
        await eventually(
            lambda: handle.execute_update(PaymentWorkflow.init, InitRequest("fp")),
            lambda again: again.status == "authorized",
            "authorized after the read-back",
        )
        again = await handle.execute_update(PaymentWorkflow.init, InitRequest("fp"))
        assert again.replayed and again.client_secret is None and again.redirect is None
        assert (await handle.execute_update(PaymentWorkflow.confirm, ConfirmRequest())).status == "confirmed"
        result = await handle.result()
        attributes = (await handle.describe()).typed_search_attributes
    assert result.client_secret is None and result.redirect is None
    assert "secret" not in repr(attributes) and "3d_secure" not in repr(attributes)
    assert fake.names()[:5] == [
        "record_payment",
        "authorize_payment",
        "record_status",
        "read_payment_intent",
        "record_status",
    ]
    assert [call.return_url for name, call in fake.calls if name == "authorize_payment"] == [request.return_url]


async def test_a_capture_is_sent_to_stripe_only_once_its_confirm_is_in_the_history(
    time_skipping_env: WorkflowEnvironment, queue: str
) -> None:
    """The confirm's acceptance and the capture's scheduling land in one workflow task completion,
    the capture runs after it: a server that loses an update it holds in memory cannot lose one
    Stripe acted on. (A capture inside the update's own workflow task would not be in the history.)"""
    fake = FakePaymentSteps()
    async with Worker(
        time_skipping_env.client, task_queue=queue, workflows=[PaymentWorkflow], activities=fake.activities()
    ):
        handle = await start(time_skipping_env, queue, payment_request())
        await handle.execute_update(PaymentWorkflow.init, InitRequest("fp"))
        await handle.execute_update(PaymentWorkflow.confirm, ConfirmRequest())
        events = (await handle.fetch_history()).events
    kinds = [event.event_type for event in events]
    accepted = max(i for i, kind in enumerate(kinds) if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
    captures = [
        i
        for i, event in enumerate(events)
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name == "capture_payment_with_fee"
    ]
    assert len(captures) == 1 and accepted < captures[0]
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED not in kinds[accepted : captures[0]]
