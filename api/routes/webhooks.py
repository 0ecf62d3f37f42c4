"""Stripe webhooks: verify the signature, process each event id once, signal the payment, or
start (signal) the dispute's workflow."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from temporalio.service import RPCError, RPCStatusCode

from api.contract import public_errors
from api.deps import ServicesDep, Session, TemporalClient, limit_by_ip
from api.errors import ApiError
from api.routes.payments import temporal_calls
from api.stripe_signature import signed_by_stripe
from schema.messages import DisputeRequest, StripeDisputeEvent, StripePaymentEvent
from schema.tables import StripeEvent, Transaction
from workflows import dispute
from workflows.dispute import DisputeWorkflow
from workflows.payment import WEBHOOK_EVENTS, PaymentWorkflow
from workflows.policies import WORKFLOW_TASK_TIMEOUT

router = APIRouter(tags=["webhooks"], dependencies=[Depends(limit_by_ip)])
log = structlog.get_logger(__name__)


class InvalidSignature(ApiError):
    status, code, message = 400, "invalid_signature", "The Stripe-Signature header does not verify."


class InvalidEvent(ApiError):
    status, code, message = 400, "invalid_event", "The event is not a Stripe event this endpoint understands."


STRIPE_ID = r"^[A-Za-z0-9_]{1,255}$"
# What our Stripe webhook endpoint subscribes to (its `enabled_events`): only what a workflow acts on.
SUBSCRIBED_EVENTS = WEBHOOK_EVENTS + dispute.WEBHOOK_EVENTS


class _PaymentError(BaseModel):
    code: str | None = None
    message: str | None = None


class _EventObject(BaseModel):
    """What we read of the event's object: a signature proves the sender, not the shape."""

    model_config = ConfigDict(extra="ignore")
    id: str | None = Field(default=None, pattern=STRIPE_ID)
    status: str | None = Field(default=None, pattern=r"^[a-z_]{1,64}$")
    last_payment_error: _PaymentError | None = None


class _EventData(BaseModel):
    object: _EventObject


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(pattern=STRIPE_ID)
    type: str = Field(pattern=r"^[a-z0-9_.]{1,255}$")
    data: _EventData


def _parsed(payload: bytes) -> _Event:
    try:
        event = _Event.model_validate_json(payload)
    except ValidationError:
        raise InvalidEvent() from None
    if event.type in WEBHOOK_EVENTS and (event.data.object.id is None or event.data.object.status is None):
        raise InvalidEvent("A payment_intent event must carry the PaymentIntent's id and status.")
    if event.type in dispute.WEBHOOK_EVENTS and event.data.object.id is None:
        raise InvalidEvent("A charge.dispute event must carry the Dispute's id.")
    return event


def _payment_event(event: _Event) -> StripePaymentEvent:
    intent = event.data.object
    error = intent.last_payment_error or _PaymentError()
    assert intent.id is not None and intent.status is not None  # checked by _parsed
    return StripePaymentEvent(
        event_id=event.id,
        type=event.type,
        payment_intent_id=intent.id,
        status=intent.status,
        failure_code=error.code,
        failure_message=error.message,
    )


@router.post(
    "/webhooks/stripe",
    summary="Stripe's events (Stripe, by its signature)",
    responses=public_errors(InvalidSignature, InvalidEvent),
)
async def stripe_webhook(
    request: Request,
    services: ServicesDep,
    session: Session,
    temporal: TemporalClient,
    signature: Annotated[str, Header(alias="Stripe-Signature")] = "",
) -> dict[str, bool]:
    """Verified, deduplicated by event id, and passed to the waiting payment's workflow."""
    payload = await request.body()
    if not signed_by_stripe(payload, signature, services.settings.stripe_webhook_secret.get_secret_value()):
        raise InvalidSignature()
    event = _parsed(payload)

    async with session.begin():
        # Recorded and acted on in one transaction: if the signal fails, Stripe's retry is not a "duplicate".
        fresh = await session.execute(
            insert(StripeEvent)
            .values(id=event.id, type=event.type, object_id=event.data.object.id)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(StripeEvent.id)
        )
        if fresh.scalar_one_or_none() is None:
            return {"received": True, "duplicate": True}
        if event.type in WEBHOOK_EVENTS:
            await _signal_payment(session, temporal, _payment_event(event))
        elif event.type in dispute.WEBHOOK_EVENTS:
            await _signal_dispute(services, temporal, event)
    return {"received": True, "duplicate": False}


async def _signal_dispute(services: ServicesDep, temporal: TemporalClient, event: _Event) -> None:
    """Signal-with-start: the first event of a dispute starts its workflow, later ones wake it up."""
    assert event.data.object.id is not None  # checked by _parsed
    settings = services.settings
    request = DisputeRequest(
        event.data.object.id, settings.dispute_fee, int(settings.dispute_read_back_interval.total_seconds())
    )
    with temporal_calls():
        await temporal.start_workflow(
            DisputeWorkflow.run,
            request,
            id=dispute.workflow_id(request.stripe_dispute_id),
            task_queue=settings.temporal_task_queue,
            task_timeout=WORKFLOW_TASK_TIMEOUT,
            start_signal="stripe_event",
            start_signal_args=[StripeDisputeEvent(event.id, event.type, request.stripe_dispute_id)],
        )


async def _signal_payment(session: Session, temporal: TemporalClient, event: StripePaymentEvent) -> None:
    tx = (
        await session.execute(
            select(Transaction).where(Transaction.stripe_payment_intent_id == event.payment_intent_id)
        )
    ).scalar_one_or_none()
    if tx is None or tx.status != "requires_action":
        return  # not ours, or nothing waits for it; reconciliation covers the rest
    try:
        with temporal_calls():
            await temporal.get_workflow_handle(tx.workflow_id).signal(PaymentWorkflow.stripe_event, event)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        log.info("webhook_for_finished_workflow", tx_id=tx.id, event_type=event.type)
