"""MerchantOnboardingWorkflow's orchestration, with activities stubbed by name."""

from collections.abc import Callable
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from payments.schema.messages import ConnectedAccountRequest, NewMerchant, PayoutAccount
from payments.workflows.merchant_onboarding import MerchantOnboardingWorkflow, workflow_id
from tests.services import fresh_key


class FakeStripeAndDb:
    def __init__(self, create_account: Callable[[ConnectedAccountRequest], str]) -> None:
        self.recorded: list[NewMerchant] = []
        self.account_requests: list[ConnectedAccountRequest] = []
        self.attached: list[PayoutAccount] = []
        self._create_account = create_account

    def activities(self) -> list[Any]:
        @activity.defn(name="record_merchant")
        async def record_merchant(merchant: NewMerchant) -> None:
            self.recorded.append(merchant)

        @activity.defn(name="create_connected_account")
        async def create_connected_account(request: ConnectedAccountRequest) -> str:
            self.account_requests.append(request)
            return self._create_account(request)

        @activity.defn(name="attach_payout_account")
        async def attach_payout_account(account: PayoutAccount) -> None:
            self.attached.append(account)

        return [record_merchant, create_connected_account, attach_payout_account]


def _merchant(payout_account: str | None = None) -> NewMerchant:
    return NewMerchant(f"mer_{fresh_key()}", "Shop", "daily", 290, "usd", payout_account)


async def _run(env: WorkflowEnvironment, fake: FakeStripeAndDb, merchant: NewMerchant) -> str | None:
    queue = f"q-{fresh_key()}"
    async with Worker(
        env.client, task_queue=queue, workflows=[MerchantOnboardingWorkflow], activities=fake.activities()
    ):
        return await env.client.execute_workflow(
            MerchantOnboardingWorkflow.run, merchant, id=workflow_id(merchant.merchant_id), task_queue=queue
        )


async def test_records_then_opens_and_attaches_the_account(time_skipping_env: WorkflowEnvironment) -> None:
    fake = FakeStripeAndDb(lambda _: "acct_new")
    merchant = _merchant()
    assert await _run(time_skipping_env, fake, merchant) == "acct_new"
    assert fake.recorded == [merchant]
    assert fake.account_requests == [ConnectedAccountRequest(merchant.merchant_id, "usd")]
    assert fake.attached == [PayoutAccount(merchant.merchant_id, "acct_new")]


async def test_a_known_payout_account_skips_stripe(time_skipping_env: WorkflowEnvironment) -> None:
    fake = FakeStripeAndDb(lambda _: pytest.fail("Stripe must not be called"))
    assert await _run(time_skipping_env, fake, _merchant(payout_account="acct_known")) == "acct_known"
    assert fake.account_requests == [] and fake.attached == []


async def test_transient_stripe_failures_are_retried_with_the_same_request(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    failures = iter([RuntimeError("stripe 500"), RuntimeError("connection reset")])

    def flaky(_: ConnectedAccountRequest) -> str:
        failure = next(failures, None)
        if failure:
            raise failure
        return "acct_eventually"

    fake = FakeStripeAndDb(flaky)
    assert await _run(time_skipping_env, fake, _merchant()) == "acct_eventually"
    assert len(fake.account_requests) == 3 and len(set(fake.account_requests)) == 1
    assert len(fake.attached) == 1


async def test_a_refused_account_fails_the_workflow_without_attaching(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    def refuse(_: ConnectedAccountRequest) -> str:
        raise ApplicationError("country not supported", type="StripeRequestRefused", non_retryable=True)

    fake = FakeStripeAndDb(refuse)
    with pytest.raises(WorkflowFailureError) as failure:
        await _run(time_skipping_env, fake, _merchant())
    cause = failure.value.cause
    assert isinstance(cause, ActivityError) and isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == "StripeRequestRefused"
    assert len(fake.account_requests) == 1 and fake.attached == []
