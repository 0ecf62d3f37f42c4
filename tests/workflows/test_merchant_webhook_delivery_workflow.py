"""WebhookDeliveryWorkflow's schedule on the time-skipping server, activities stubbed by name:
attempts until a 2xx; waits that double (jittered) up to the cap; after the retry window the
delivery is given up (the endpoint-disabling check included); one attempt for a manual rerun."""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from payments.schema.messages import WebhookAttemptResult, WebhookDeliveryRequest, WebhookGiveUp
from payments.workflows.merchant_webhook_delivery import WebhookDeliveryWorkflow, backoff
from tests.services import fresh_key

DAY = 24 * 3600.0


def delivery(single_attempt: bool = False) -> WebhookDeliveryRequest:
    return WebhookDeliveryRequest(
        delivery_id="whd_1",
        endpoint_id="we_1",
        event_id=7,
        merchant_id="mer_1",
        retry_initial_seconds=60,
        retry_max_seconds=3600,
        retry_for_seconds=3 * DAY,
        single_attempt=single_attempt,
    )


class FakeReceiver:
    """The attempt and give-up activities: outcomes by attempt number, the time of each recorded."""

    def __init__(self, outcome: Callable[[int], str | Awaitable[str]]) -> None:
        self.outcome = outcome
        self.attempted_at: list[float] = []
        self.given_up: list[WebhookGiveUp] = []

    def activities(self) -> list[Any]:
        fake = self

        @activity.defn(name="attempt_delivery")
        async def attempt_delivery(request: WebhookDeliveryRequest) -> WebhookAttemptResult:
            fake.attempted_at.append(activity.info().scheduled_time.timestamp())
            outcome = fake.outcome(len(fake.attempted_at))
            if not isinstance(outcome, str):
                outcome = await outcome
            return WebhookAttemptResult(request.delivery_id, outcome, 200 if outcome == "delivered" else 500)

        @activity.defn(name="give_up_delivery")
        async def give_up_delivery(give_up: WebhookGiveUp) -> bool:
            fake.given_up.append(give_up)
            return True

        return [attempt_delivery, give_up_delivery]


async def _run(env: WorkflowEnvironment, fake: FakeReceiver, request: WebhookDeliveryRequest) -> str:
    queue = f"webhooks-{fresh_key()}"
    async with Worker(env.client, task_queue=queue, workflows=[WebhookDeliveryWorkflow], activities=fake.activities()):
        return await env.client.execute_workflow(
            WebhookDeliveryWorkflow.run, request, id=f"webhook:{fresh_key()}", task_queue=queue
        )


async def test_failed_attempts_are_retried_until_one_is_delivered(time_skipping_env: WorkflowEnvironment) -> None:
    fake = FakeReceiver(lambda n: "delivered" if n == 4 else "retry")
    assert await _run(time_skipping_env, fake, delivery()) == "delivered"
    gaps = [b - a for a, b in zip(fake.attempted_at, fake.attempted_at[1:], strict=False)]
    assert len(gaps) == 3 and not fake.given_up
    for failures, gap in enumerate(gaps, start=1):  # 60 s, 120 s, 240 s ceilings, each at least halved
        ceiling = 60 * 2 ** (failures - 1)
        assert ceiling / 2 - 1 <= gap <= ceiling + 1


async def test_after_three_days_of_failures_the_delivery_is_given_up(time_skipping_env: WorkflowEnvironment) -> None:
    fake = FakeReceiver(lambda n: "retry")
    assert await _run(time_skipping_env, fake, delivery()) == "failed"
    span = fake.attempted_at[-1] - fake.attempted_at[0]
    assert 3 * DAY - 3600 <= span <= 3 * DAY + 60  # the last attempt lands at the end of the window
    assert max(b - a for a, b in zip(fake.attempted_at, fake.attempted_at[1:], strict=False)) <= 3600 + 1
    assert fake.given_up == [WebhookGiveUp("whd_1", "we_1", 3 * DAY)]


async def test_a_gone_endpoint_ends_the_delivery_and_a_manual_rerun_attempts_once(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    assert await _run(time_skipping_env, FakeReceiver(lambda n: "gone"), delivery()) == "gone"
    once = FakeReceiver(lambda n: "retry")
    assert await _run(time_skipping_env, once, delivery(single_attempt=True)) == "failed"
    assert len(once.attempted_at) == 1 and len(once.given_up) == 1


async def test_a_manual_retry_that_lands_with_a_delivery_sends_it_again(time_skipping_env: WorkflowEnvironment) -> None:
    """The API's retry of a delivered delivery met its run still ending (a CI run): the signal
    reached the old run, which returned, and the merchant's retry sent nothing."""
    client = time_skipping_env.client

    async def retried_while_landing(n: int) -> str:
        if n == 1:  # the merchant's retry arrives while the first attempt succeeds
            run = activity.info().workflow_id
            assert run is not None
            await client.get_workflow_handle(run).signal(WebhookDeliveryWorkflow.retry_now)
        return "delivered"

    fake = FakeReceiver(retried_while_landing)
    assert await _run(time_skipping_env, fake, delivery()) == "delivered"
    assert len(fake.attempted_at) == 2


def test_backoff_doubles_to_the_cap_and_jitter_keeps_at_least_half() -> None:
    request = delivery()
    assert backoff(request, 1, 0.0) == timedelta(seconds=30)
    assert backoff(request, 1, 0.999) < timedelta(seconds=60)
    assert backoff(request, 3, 0.0) == timedelta(seconds=120)
    assert backoff(request, 500, 0.0) == timedelta(seconds=1800)  # capped at an hour, never overflowing
