"""Refunds of a captured payment: full or partial, never beyond what was captured."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Response, status
from temporalio.client import WorkflowFailureError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from payments.api.access import visible_transaction
from payments.api.contract import errors
from payments.api.deps import CurrentPrincipal, ServicesDep, Session, TemporalClient
from payments.api.errors import ApiError, IdempotencyKeyReused, NotFound, PaymentStateConflict
from payments.api.idempotency import REPLAY_HEADER
from payments.api.models import RefundCreate, RefundOut
from payments.api.temporal_calls import waiting_on_temporal
from payments.schema.messages import RefundRequest
from payments.schema.tables import Refund
from payments.workflows import search_attributes as sa
from payments.workflows.refund import RefundWorkflow, workflow_id

router = APIRouter(tags=["refunds"])


class RefundExceedsCaptured(ApiError):
    status, code = 409, "refund_exceeds_captured"


def refund_out(refund: Refund) -> RefundOut:
    return RefundOut(
        id=refund.id,
        tx_id=refund.tx_id,
        amount=refund.amount,
        currency=refund.currency,
        status=refund.status,
        reason=refund.reason,
        failure_code=refund.failure_code,
        created_at=refund.created_at,
    )


def refund_id(tx_id: str, idempotency_key: str) -> str:
    """Derived from the key: concurrent repeats converge on one refund row and one Stripe refund."""
    return "rf_" + hashlib.sha256(f"{tx_id}:{idempotency_key}".encode()).hexdigest()[:32]


def _same_request(refund: Refund, body: RefundCreate) -> bool:
    """A repeat names the refund's amount (or none: "the rest", which the first answer settled)
    and its reason; anything else is another refund under a used key."""
    return body.amount in (None, refund.amount) and body.reason == refund.reason


def _activity_failure(exc: WorkflowFailureError) -> ApplicationError | None:
    cause = exc.cause.cause if isinstance(exc.cause, ActivityError) else exc.cause
    return cause if isinstance(cause, ApplicationError) else None


@router.post(
    "/payments/{tx_id}/refunds",
    status_code=status.HTTP_201_CREATED,
    summary="Refund a captured payment, in full or in part (merchant: its own, operator)",
    responses={
        200: {"model": RefundOut, "description": "A repeat of the key: the first answer", "headers": REPLAY_HEADER},
        **errors(NotFound, RefundExceedsCaptured, PaymentStateConflict, IdempotencyKeyReused),
    },
)
async def create_refund(
    tx_id: str,
    body: RefundCreate,
    response: Response,
    principal: CurrentPrincipal,
    services: ServicesDep,
    session: Session,
    temporal: TemporalClient,
) -> RefundOut:
    """Never beyond what was captured, never refused for the merchant's balance (it may go
    negative); the key makes a repeat the same refund. The answer is Stripe's word: `succeeded`,
    or `pending` until Stripe settles it (the merchant's `refund.succeeded` or `refund.failed`
    webhook tells which; a refund may also fail after it succeeded). The key again with another
    amount or reason is `idempotency_key_reused`."""
    tx = await visible_transaction(services.sessions, tx_id, principal)
    if not (principal.is_("operator") or principal.is_("merchant", tx.merchant_id)):
        raise NotFound()
    rid = refund_id(tx.id, body.idempotency_key)
    existing = await session.get(Refund, rid)
    if existing is not None and not _same_request(existing, body):
        raise IdempotencyKeyReused()
    if existing is not None and (existing.status != "pending" or existing.stripe_refund_id is not None):
        response.status_code, response.headers["Idempotent-Replayed"] = 200, "true"
        return refund_out(existing)
    read_back = int(services.settings.refund_read_back_interval.total_seconds())
    request = RefundRequest(rid, tx.id, body.amount, body.reason, body.idempotency_key, read_back)
    try:
        async with waiting_on_temporal(session):
            await temporal.execute_workflow(
                RefundWorkflow.run,
                request,
                id=workflow_id(tx.id, body.idempotency_key),
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                task_queue=services.settings.temporal_task_queue,
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(sa.TX_ID, tx.id), SearchAttributePair(sa.MERCHANT_ID, tx.merchant_id)]
                ),
            )
    except WorkflowFailureError as exc:
        failure = _activity_failure(exc)
        if failure is not None and failure.type == "RefundExceedsCaptured":
            raise RefundExceedsCaptured(failure.message) from exc
        if failure is not None and failure.type == "PaymentNotRefundable":
            raise PaymentStateConflict(tx.status, failure.message) from exc
        raise
    refund = await session.get(Refund, rid, populate_existing=True)
    assert refund is not None
    if not _same_request(refund, body):
        raise IdempotencyKeyReused()  # a concurrent first use of the key with other parameters won
    return refund_out(refund)
