"""PaymentWorkflow after a decline: another card on the same PaymentIntent, bounded attempts, and
the customer giving up or the order expiring (time-skipping server, activities stubbed by name)."""

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from payments.schema.messages import (
    AnotherCard,
    Authorization,
    ConfirmRequest,
    InitRequest,
    PaymentRequest,
    ReauthorizeRequest,
    RedirectToUrl,
    StatusChange,
    StripePaymentEvent,
    VoidRequest,
)
from payments.workflows.payment import PaymentWorkflow
from tests.services import eventually
from tests.workflows.test_payment_workflow import (
    WEEK,
    FakePaymentSteps,
    _declined,
    init_with_start,
    payment_request,
    start,
)

MASTERCARD = AnotherCard("pm_card_mastercard")


def payment_worker(env: WorkflowEnvironment, queue: str, fake: FakePaymentSteps) -> Worker:
    return Worker(env.client, task_queue=queue, workflows=[PaymentWorkflow], activities=fake.activities())


def retried_request(max_card_attempts: int = 3) -> PaymentRequest:
    return dataclasses.replace(payment_request(), max_card_attempts=max_card_attempts)


def _declined_again(_: ReauthorizeRequest) -> Authorization:
    raise ApplicationError(
        "Your card has insufficient funds.",
        {"payment_intent_id": "pi_d", "code": "insufficient_funds"},
        type="CardDeclined",
        non_retryable=True,
    )


def _authentication_required(_: ReauthorizeRequest) -> Authorization:
    redirect = RedirectToUrl("https://stripe.test/3d_secure_2/hosted?payment_intent=pi_d", "https://shop.test/checkout")
    return Authorization("pi_d", "requires_action", client_secret="pi_d_secret_s", redirect=redirect)


def _not_paid() -> str:
    """The PaymentIntent read back once 3-D Secure failed: waiting for another card."""
    return "requires_payment_method"


@asynccontextmanager
async def declined_payment(
    env: WorkflowEnvironment, queue: str, request: PaymentRequest | None = None, **steps: Any
) -> AsyncIterator[tuple[FakePaymentSteps, WorkflowHandle[Any, Any]]]:
    """A payment (`request`, by default one allowed 3 cards) whose first card was declined, waiting
    for another, while a worker runs it: the fake steps (authorize declines; `steps` as given) and
    the workflow's handle."""
    fake = FakePaymentSteps(authorize=_declined, **steps)
    async with payment_worker(env, queue, fake):
        handle = await start(env, queue, request or retried_request())
        view = await handle.execute_update(PaymentWorkflow.init, InitRequest("fp"))
        assert view.status == "declined" and view.failure_code == "generic_decline"
        yield fake, handle


def statuses(fake: FakePaymentSteps) -> list[tuple[str, str | None]]:
    return [
        (c.status, c.event_type) for name, c in fake.calls if name == "record_status" and isinstance(c, StatusChange)
    ]


async def test_a_decline_waits_for_another_card_which_is_authorized_and_captured_at_once(
    time_skipping_env: WorkflowEnvironment, queue: str
) -> None:
    request = retried_request()
    async with declined_payment(time_skipping_env, queue, request) as (fake, handle):
        paid = await handle.execute_update(PaymentWorkflow.confirm, ConfirmRequest(700, MASTERCARD))
        assert paid.status == "confirmed" and paid.amount_captured == 700 and paid.card_attempts == 2
        assert (await handle.result()).status == "confirmed"
        events = (await handle.fetch_history()).events
    reauthorized = [call for name, call in fake.calls if name == "reauthorize_payment"]
    assert reauthorized == [ReauthorizeRequest(request.tx_id, "pi_d", 2, MASTERCARD, request.return_url)]
    assert statuses(fake) == [("declined", "payment.declined"), ("authorized", "payment.authorized")]
    assert fake.names()[-2:] == ["capture_payment", "record_capture"]
    # Stripe sees the card only once the confirm carrying it is in the history: an activity task
    # scheduled by the workflow task that accepted the update.
    kinds = [event.event_type for event in events]
    scheduled = [
        i
        for i, event in enumerate(events)
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name == "reauthorize_payment"
    ]
    assert len(scheduled) == 1
    accepted = max(
        i
        for i, kind in enumerate(kinds[: scheduled[0]])
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    )
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED not in kinds[accepted : scheduled[0]]


async def test_each_decline_answers_card_declined_and_the_last_card_fails_the_payment(
    time_skipping_env: WorkflowEnvironment, queue: str
) -> None:
    async with declined_payment(time_skipping_env, queue, reauthorize=_declined_again) as (fake, handle):
        seen = []
        for card in (MASTERCARD, AnotherCard("pm_card_amex")):  # the same card again would be a repeat
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(PaymentWorkflow.confirm, ConfirmRequest(card=card))
            assert isinstance(refused.value.cause, ApplicationError) and refused.value.cause.type == "CardDeclined"
            seen.append(refused.value.cause.details[0]["status"])
        final = await handle.result()
    assert seen == ["declined", "failed"]
    assert final.status == "failed" and final.failure_code == "insufficient_funds" and final.card_attempts == 3
    assert [call.attempt for name, call in fake.calls if name == "reauthorize_payment"] == [2, 3]
    assert statuses(fake)[-1] == ("failed", "payment.failed")
    assert "capture_payment" not in fake.names() and "void_payment" not in fake.names()


@pytest.mark.parametrize("card", [None, MASTERCARD])
async def test_a_confirm_that_does_not_fit_the_status_is_refused(
    time_skipping_env: WorkflowEnvironment, queue: str, card: AnotherCard | None
) -> None:
    """A declined payment takes no plain capture; an authorized one takes no other card."""
    fake = FakePaymentSteps(authorize=_declined if card is None else None)
    async with payment_worker(time_skipping_env, queue, fake):
        handle = await start(time_skipping_env, queue, retried_request())
        status = (await handle.execute_update(PaymentWorkflow.init, InitRequest("fp"))).status
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(PaymentWorkflow.confirm, ConfirmRequest(card=card))
        assert isinstance(refused.value.cause, ApplicationError)
        assert (
            refused.value.cause.type == "PaymentNotConfirmable" and refused.value.cause.details[0]["status"] == status
        )
        await handle.execute_update(PaymentWorkflow.cancel)  # ends the run: none is left on the shared server
    assert "reauthorize_payment" not in fake.names() and "capture_payment" not in fake.names()


async def test_giving_up_on_a_declined_payment_cancels_the_intent_and_fails_it(
    time_skipping_env: WorkflowEnvironment, queue: str
) -> None:
    request = retried_request()
    async with declined_payment(time_skipping_env, queue, request) as (fake, handle):
        given_up = await handle.execute_update(PaymentWorkflow.cancel)
    assert given_up.status == "failed" and given_up.failure_code == "requested_by_customer"
    assert [call for name, call in fake.calls if name == "void_payment"] == [
        VoidRequest(request.tx_id, "pi_d", "requested_by_customer")
    ]
    assert statuses(fake)[-1] == ("failed", "payment.failed")


async def test_a_declined_payment_fails_when_the_order_expires(
    time_skipping_env: WorkflowEnvironment, queue: str
) -> None:
    request = retried_request()
    async with declined_payment(time_skipping_env, queue, request) as (fake, handle):
        started = (await handle.describe()).start_time
        result = await handle.result()  # the test server skips the timer
        assert (await time_skipping_env.get_current_time() - started).total_seconds() >= WEEK
    assert result.status == "failed" and result.failure_code == "payment_expired"
    assert [call for name, call in fake.calls if name == "void_payment"] == [
        VoidRequest(request.tx_id, "pi_d", "abandoned")
    ]


async def test_another_card_that_needs_3d_secure_answers_where_to_authenticate_and_a_failure_is_a_decline(
    time_skipping_env: WorkflowEnvironment, queue: str
) -> None:
    steps: dict[str, Any] = {"reauthorize": _authentication_required, "intent_status": _not_paid}
    async with declined_payment(time_skipping_env, queue, **steps) as (fake, handle):
        action = await handle.execute_update(PaymentWorkflow.confirm, ConfirmRequest(card=MASTERCARD))
        assert action.status == "requires_action" and action.client_secret == "pi_d_secret_s"
        assert action.redirect is not None and "pi_d" in action.redirect.url
        failed_3ds = StripePaymentEvent("evt_1", "payment_intent.payment_failed", "pi_d", "requires_payment_method")
        await handle.signal(PaymentWorkflow.stripe_event, failed_3ds)
        await eventually(
            lambda: handle.query(PaymentWorkflow.status),
            lambda view: view is not None and view.status == "declined",
            "declined after 3-D Secure failed",
        )
        fake._reauthorize = lambda r: Authorization("pi_d", "authorized", "visa", "4242")
        paid = await handle.execute_update(PaymentWorkflow.confirm, ConfirmRequest(card=AnotherCard("pm_card_visa")))
    assert paid.status == "confirmed" and paid.card_attempts == 3
    assert [call.attempt for name, call in fake.calls if name == "reauthorize_payment"] == [2, 3]


async def test_a_run_without_an_attempt_bound_fails_at_the_first_decline(
    time_skipping_env: WorkflowEnvironment, queue: str
) -> None:
    """A payment started before the setting (or with PAYMENTS_MAX_CARD_ATTEMPTS=1): one card."""
    fake = FakePaymentSteps(authorize=_declined)
    async with payment_worker(time_skipping_env, queue, fake):
        view = await init_with_start(time_skipping_env, queue, retried_request(max_card_attempts=1))
        assert view.status == "failed"
    assert statuses(fake) == [("failed", "payment.failed")]


async def test_a_repeat_of_the_card_gets_the_first_answer_and_no_second_attempt(
    time_skipping_env: WorkflowEnvironment, queue: str
) -> None:
    async with declined_payment(time_skipping_env, queue) as (fake, handle):
        first, again = await asyncio.gather(  # the second while the first is in flight
            handle.execute_update(PaymentWorkflow.confirm, ConfirmRequest(card=MASTERCARD)),
            handle.execute_update(PaymentWorkflow.confirm, ConfirmRequest(card=MASTERCARD)),
        )
        assert first == again and first.status == "confirmed"
    assert [name for name in fake.names() if name in ("reauthorize_payment", "capture_payment")] == [
        "reauthorize_payment",
        "capture_payment",
    ]
