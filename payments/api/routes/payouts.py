"""Payouts: on-demand payout of a merchant's available balance, the balance, the payout history."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, status
from sqlalchemy import select
from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from payments.api.access import own_merchant
from payments.api.contract import errors
from payments.api.deps import CurrentPrincipal, ServicesDep, Session, TemporalClient
from payments.api.errors import (
    ApiError,
    CurrencyNotAccepted,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    NotFound,
)
from payments.api.idempotency import KeyHeader, fingerprint, required_key
from payments.api.models import BalanceOut, PayoutCreate, PayoutList, PayoutOut, payout_out, payout_view_out
from payments.api.pagination import InvalidCursor, Limit, newest_first
from payments.api.temporal_calls import waiting_on_temporal
from payments.schema import balances
from payments.schema.messages import PayoutRequest
from payments.schema.tables import Payout
from payments.workflows import search_attributes as sa
from payments.workflows.payout import MerchantPayoutWorkflow, period_of, workflow_id
from payments.workflows.policies import WORKFLOW_TASK_TIMEOUT

router = APIRouter(tags=["payouts"])


class InsufficientBalance(ApiError):
    status, code = 409, "insufficient_balance"


class NoPayoutAccount(ApiError):
    status, code = 409, "no_payout_account"


def _refusal(exc: WorkflowUpdateFailedError) -> ApiError | None:
    cause = exc.cause
    if not isinstance(cause, ApplicationError):
        return None
    available = (cause.details[0] or {}).get("available") if cause.details else None
    if cause.type == "InsufficientBalance":
        return InsufficientBalance(cause.message, extra={"available": available})
    if cause.type == "NoPayoutAccount":
        return NoPayoutAccount(cause.message)
    return None


@router.post(
    "/payouts/schedule",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Pay out a merchant's balance now (merchant: self, operator)",
    responses=errors(
        IdempotencyKeyRequired,
        IdempotencyKeyReused,
        NotFound,
        CurrencyNotAccepted,
        InsufficientBalance,
        NoPayoutAccount,
    ),
)
async def schedule_payout(
    body: PayoutCreate,
    principal: CurrentPrincipal,
    services: ServicesDep,
    session: Session,
    temporal: TemporalClient,
    idempotency_header: KeyHeader = None,
) -> PayoutOut:
    """Pay out `amount` (default: all that is available) now; answers once the funds are reserved.
    The key (body or `Idempotency-Key`) makes a retry the same payout: `idempotency_key_required`
    without one, `idempotency_key_reused` when it comes again with another amount or currency."""
    key = required_key(body.idempotency_key, idempotency_header)
    merchant = await own_merchant(session, principal, body.merchant_id)
    currency = body.currency or merchant.currency
    if currency != merchant.currency:
        raise CurrencyNotAccepted(f"This merchant is paid in {merchant.currency} only.")
    digest = fingerprint(merchant.id, body.amount, currency)
    hold_seconds = int(services.settings.payout_hold.total_seconds())
    request = PayoutRequest(
        merchant.id, key, period_of("daily", datetime.now(UTC)), body.amount, currency, hold_seconds, digest
    )
    start = WithStartWorkflowOperation(
        MerchantPayoutWorkflow.run,
        request,
        id=workflow_id(merchant.id, key),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        task_queue=services.settings.temporal_task_queue,
        task_timeout=WORKFLOW_TASK_TIMEOUT,
        search_attributes=TypedSearchAttributes([SearchAttributePair(sa.MERCHANT_ID, merchant.id)]),
    )
    try:
        async with waiting_on_temporal(session):
            view = await temporal.execute_update_with_start_workflow(
                MerchantPayoutWorkflow.accepted, start_workflow_operation=start
            )
    except WorkflowUpdateFailedError as exc:
        refusal = _refusal(exc)
        if refusal is None:
            raise
        raise refusal from exc
    # Answered from the reserve's view, as it was accepted: the transfer may already be done by now.
    kept, answer = view.request_fingerprint, payout_view_out(view)
    if answer is None:
        payout = await session.get(Payout, view.payout_id, populate_existing=True)
        assert payout is not None
        kept, answer = payout.request_fingerprint, payout_out(payout)
    if kept not in (None, digest):  # None: paid by a schedule, or before keys were kept
        raise IdempotencyKeyReused()
    return answer


@router.get(
    "/merchants/{merchant_id}/balance",
    summary="A merchant's balance, from the ledger (merchant: self, operator)",
    responses=errors(NotFound),
)
async def get_balance(
    merchant_id: str, principal: CurrentPrincipal, services: ServicesDep, session: Session
) -> BalanceOut:
    merchant = await own_merchant(session, principal, merchant_id)
    now = await balances.balance(session, merchant, services.settings.payout_hold)
    return BalanceOut(
        merchant_id=now.merchant_id,
        currency=now.currency,
        available=now.available,
        in_transit=now.in_transit,
        paid=now.paid,
        disputed=now.disputed,
    )


@router.get(
    "/merchants/{merchant_id}/payouts",
    summary="A merchant's payouts (merchant: self, operator)",
    responses=errors(NotFound, InvalidCursor),
)
async def list_payouts(
    merchant_id: str,
    principal: CurrentPrincipal,
    session: Session,
    limit: Limit = 20,
    cursor: str | None = None,
) -> PayoutList:
    """A merchant's payouts, newest first."""
    await own_merchant(session, principal, merchant_id)
    query = select(Payout).where(Payout.merchant_id == merchant_id)
    page, next_cursor = await newest_first(session, query, Payout.created_at, Payout.id, limit, cursor)
    return PayoutList(data=[payout_out(p) for p in page], next_cursor=next_cursor)
