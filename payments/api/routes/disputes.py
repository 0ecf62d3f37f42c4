"""Disputes (chargebacks): a merchant's own, or all for an operator; the merchant answers one with
evidence or accepts it. The moves go through the dispute's workflow, which acts at Stripe."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from payments.api.auth import Principal
from payments.api.contract import errors
from payments.api.deps import CurrentPrincipal, Session, TemporalClient
from payments.api.errors import ApiError, Forbidden, NotFound
from payments.api.models import DisputeList, DisputeOut, EvidenceCreate, dispute_out
from payments.api.pagination import InvalidCursor, Limit, newest_first
from payments.api.temporal_calls import closed_or_lost, waiting_on_temporal
from payments.schema.messages import DisputeEvidence
from payments.schema.tables import Dispute, DisputeStatus
from payments.workflows.dispute import DisputeWorkflow

router = APIRouter(tags=["disputes"])


class DisputeNotOpen(ApiError):
    """Evidence or acceptance after the dispute left needs_response; the envelope carries its status."""

    status, code = 409, "dispute_not_open"

    def __init__(self, current_status: str, message: str | None = None) -> None:
        super().__init__(message or f"The dispute is {current_status}.", extra={"dispute_status": current_status})


def _merchant_scope(principal: Principal) -> str | None:
    """The merchant whose disputes the caller sees (None: an operator sees all); users see none."""
    if principal.is_("operator"):
        return None
    if principal.is_("merchant"):
        return principal.subject
    raise Forbidden()


async def visible_dispute(session: Session, dispute_id: str, principal: Principal) -> Dispute:
    """Another merchant's dispute answers 404, exactly like a missing one."""
    scope = _merchant_scope(principal)
    dispute = await session.get(Dispute, dispute_id, populate_existing=True)
    if dispute is None or scope not in (None, dispute.merchant_id):
        raise NotFound()
    return dispute


@router.get(
    "/disputes",
    summary="Disputes, newest first (merchant: its own, operator: all)",
    responses=errors(InvalidCursor),
)
async def list_disputes(
    principal: CurrentPrincipal,
    session: Session,
    status: DisputeStatus | None = None,
    limit: Limit = 20,
    cursor: str | None = None,
) -> DisputeList:
    query = select(Dispute)
    if (merchant_id := _merchant_scope(principal)) is not None:
        query = query.where(Dispute.merchant_id == merchant_id)
    if status is not None:
        query = query.where(Dispute.status == status)
    page, next_cursor = await newest_first(session, query, Dispute.created_at, Dispute.id, limit, cursor)
    return DisputeList(data=[dispute_out(d) for d in page], next_cursor=next_cursor)


@router.get(
    "/disputes/{dispute_id}",
    summary="One dispute (merchant: its own, operator)",
    responses=errors(NotFound),
)
async def get_dispute(dispute_id: str, principal: CurrentPrincipal, session: Session) -> DisputeOut:
    return dispute_out(await visible_dispute(session, dispute_id, principal))


async def _through_workflow(
    session: Session, temporal: TemporalClient, dispute: Dispute, principal: Principal, evidence: EvidenceCreate | None
) -> DisputeOut:
    """Evidence (or, without any, acceptance) through the dispute's workflow; the row is the answer."""
    if dispute.status not in ("needs_response", "warning_needs_response"):
        raise DisputeNotOpen(dispute.status)
    handle = temporal.get_workflow_handle(dispute.workflow_id)
    try:
        async with waiting_on_temporal(session):
            if evidence is None:
                await handle.execute_update(DisputeWorkflow.accept)
            else:
                await handle.execute_update(
                    DisputeWorkflow.submit_evidence, DisputeEvidence(evidence.text, evidence.submit)
                )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == "DisputeNotOpen":
            dispute = await visible_dispute(session, dispute.id, principal)
            raise DisputeNotOpen(dispute.status, cause.message) from exc
        raise
    except RPCError as exc:
        await closed_or_lost(handle, exc)
        dispute = await visible_dispute(session, dispute.id, principal)
        raise DisputeNotOpen(dispute.status) from exc  # its workflow has finished: decided
    return dispute_out(await visible_dispute(session, dispute.id, principal))


@router.post(
    "/disputes/{dispute_id}/evidence",
    summary="Answer a dispute with evidence, submitted now or kept until due_by (merchant: its own, operator)",
    responses=errors(NotFound, DisputeNotOpen),
)
async def submit_evidence(
    dispute_id: str, body: EvidenceCreate, principal: CurrentPrincipal, session: Session, temporal: TemporalClient
) -> DisputeOut:
    dispute = await visible_dispute(session, dispute_id, principal)
    return await _through_workflow(session, temporal, dispute, principal, body)


@router.post(
    "/disputes/{dispute_id}/accept",
    summary="Accept a dispute: it is lost, the withdrawal stands (merchant: its own, operator)",
    responses=errors(NotFound, DisputeNotOpen),
)
async def accept_dispute(
    dispute_id: str, principal: CurrentPrincipal, session: Session, temporal: TemporalClient
) -> DisputeOut:
    dispute = await visible_dispute(session, dispute_id, principal)
    return await _through_workflow(session, temporal, dispute, principal, None)
