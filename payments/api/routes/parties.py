"""Users and merchants: created by operators so a stack can be filled."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response, status
from sqlalchemy import select
from temporalio.client import WorkflowFailureError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError

from payments.api.contract import errors
from payments.api.deps import CurrentPrincipal, Operator, ServicesDep, Session, TemporalClient
from payments.api.errors import ApiError, NotFound
from payments.api.ids import new_id
from payments.api.models import MerchantCreate, MerchantOut, UserCreate, UserOut
from payments.api.temporal_calls import waiting_on_temporal
from payments.schema.messages import NewMerchant
from payments.schema.tables import Merchant, User
from payments.workflows.merchant_onboarding import MerchantOnboardingWorkflow, workflow_id

router = APIRouter(tags=["parties"])

# How long POST /merchants waits for the connected account before answering 202 without it.
ONBOARDING_WAIT_SECONDS = 10.0


class PayoutAccountTaken(ApiError):
    status, code, message = 409, "payout_account_taken", "This payout account belongs to another merchant."


def _refused_by_database(failure: WorkflowFailureError) -> bool:
    cause: BaseException | None = failure.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.__cause__
    return (
        isinstance(cause, ApplicationError) and cause.type == "DatabaseRefused"
    )  # payments/activities/permanent_errors.py


@router.post("/users", status_code=status.HTTP_201_CREATED, summary="Create a user (operator)", responses=errors())
async def create_user(body: UserCreate, session: Session, services: ServicesDep, _: Operator) -> UserOut:
    """Fills a stack: users sign in elsewhere, and their token's `sub` is this id."""
    user = User(id=new_id("usr"), name=body.name)
    async with session.begin():
        session.add(user)
    await services.parties.forget_user(user.id)
    return UserOut(id=user.id, name=user.name)


@router.post(
    "/merchants",
    status_code=status.HTTP_201_CREATED,
    summary="Create a merchant with a Stripe connected account (operator)",
    responses={
        202: {"model": MerchantOut, "description": "Created; the Stripe connected account is still being opened"},
        **errors(PayoutAccountTaken),
    },
)
async def create_merchant(
    body: MerchantCreate,
    response: Response,
    services: ServicesDep,
    session: Session,
    temporal: TemporalClient,
    _: Operator,
) -> MerchantOut:
    """The onboarding workflow writes the row and opens the connected account, durably."""
    if body.payout_account and await session.scalar(
        select(Merchant.id).where(Merchant.payout_account == body.payout_account)
    ):
        raise PayoutAccountTaken()
    merchant = NewMerchant(merchant_id=new_id("mer"), **body.model_dump())
    try:
        async with waiting_on_temporal(session):
            handle = await temporal.start_workflow(
                MerchantOnboardingWorkflow.run,
                merchant,
                id=workflow_id(merchant.merchant_id),
                task_queue=services.settings.temporal_task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
            account = await asyncio.wait_for(handle.result(), ONBOARDING_WAIT_SECONDS)
    except WorkflowFailureError as failure:
        if _refused_by_database(failure):
            raise PayoutAccountTaken() from None  # another merchant took it in the meantime
        raise
    except TimeoutError:
        response.status_code = status.HTTP_202_ACCEPTED
        account = None
    fields = body.model_dump() | {"payout_account": account}
    return MerchantOut(id=merchant.merchant_id, **fields)


@router.get("/merchants/{merchant_id}", summary="One merchant (merchant: self, operator)", responses=errors(NotFound))
async def get_merchant(merchant_id: str, services: ServicesDep, principal: CurrentPrincipal) -> MerchantOut:
    """Another merchant answers 404, like a missing one."""
    if not (principal.is_("operator") or principal.is_("merchant", merchant_id)):
        raise NotFound()
    merchant = await services.parties.merchant(services.sessions, merchant_id)
    if merchant is None:
        raise NotFound()
    return MerchantOut.model_validate(merchant, from_attributes=True)
