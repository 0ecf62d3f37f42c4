"""Stripe webhooks: verify the signature, process each event id once, signal the payment (or, when
its workflow is gone, start one that catches its row up with Stripe), or start (signal) the
dispute's or the refund's settlement workflow."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import bindparam, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from payments.api.contract import public_errors
from payments.api.deps import ServicesDep, TemporalClient, limit_by_ip
from payments.api.errors import ApiError
from payments.api.metrics import OWN_MOVES
from payments.api.stripe_signature import STRIPE_WEBHOOK_PATH, request_signed_by_stripe
from payments.api.temporal_calls import temporal_calls
from payments.schema.driver import Statement, fetch_row
from payments.schema.messages import (
    DisputeRequest,
    PaymentCatchUp,
    RefundSettlement,
    StripeDisputeEvent,
    StripePaymentEvent,
    StripeRefundEvent,
)
from payments.schema.tables import OPEN_PAYMENT_STATUSES, Refund, StripeEvent, Transaction
from payments.workflows import dispute, payment_catch_up, refund
from payments.workflows import search_attributes as sa
from payments.workflows.dispute import DisputeWorkflow
from payments.workflows.payment import MOVED_AT_STRIPE, WEBHOOK_EVENTS, PaymentWorkflow
from payments.workflows.payment_catch_up import PaymentCatchUpWorkflow
from payments.workflows.policies import WORKFLOW_TASK_TIMEOUT
from payments.workflows.refund import RefundSettlementWorkflow

router = APIRouter(tags=["webhooks"], dependencies=[Depends(limit_by_ip)])
log = structlog.get_logger(__name__)


class InvalidSignature(ApiError):
    status, code, message = 400, "invalid_signature", "The Stripe-Signature header does not verify."


class InvalidEvent(ApiError):
    status, code, message = 400, "invalid_event", "The event is not a Stripe event this endpoint understands."


STRIPE_ID = r"^[A-Za-z0-9_]{1,255}$"
# Stripe sends our own capture's webhook at once, often before its answer reaches the worker, which
# records it a workflow task later: the row is read after each pause (6.3 s in all) before the
# workflow is asked whether it still runs. Read at once, the row was behind for nearly every
# payment, and the describe cost about 6 ms of Temporal's and the API's CPU (make bench, 8/s).
OWN_MOVE_PAUSES = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
_OWN_MOVE_ROW = Statement.of(
    select(Transaction.status, Transaction.amount_captured, Transaction.workflow_id).where(
        Transaction.id == bindparam("tx_id")
    )
)
TX_ID = re.compile(r"tx_[0-9a-f]{32}")
# What our Stripe webhook endpoint subscribes to (its `enabled_events`): only what a workflow acts on.
SUBSCRIBED_EVENTS = WEBHOOK_EVENTS + dispute.WEBHOOK_EVENTS + refund.WEBHOOK_EVENTS


class _PaymentError(BaseModel):
    code: str | None = None
    message: str | None = None


class _EventObject(BaseModel):
    """What we read of the event's object: a signature proves the sender, not the shape."""

    model_config = ConfigDict(extra="ignore")
    id: str | None = Field(default=None, pattern=STRIPE_ID)
    status: str | None = Field(default=None, pattern=r"^[a-z_]{1,64}$")
    last_payment_error: _PaymentError | None = None
    payment_intent: str | None = Field(default=None, pattern=STRIPE_ID)  # of a Charge or a Refund
    metadata: dict[str, str] = Field(default_factory=dict)  # ours carry the tx_id or refund_id


class _EventData(BaseModel):
    object: _EventObject


class _EventRequest(BaseModel):
    """The API request that caused the event, as Stripe reports it (none for Stripe's own moves)."""

    idempotency_key: str | None = Field(default=None, max_length=255)


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(pattern=STRIPE_ID)
    type: str = Field(pattern=r"^[a-z0-9_.]{1,255}$")
    data: _EventData
    request: _EventRequest | None = None


# The steps of a payment's workflow that move its money, by the suffix of their idempotency key.
_OWN_MOVES = {
    "payment_intent.succeeded": ":capture",
    "payment_intent.canceled": ":cancel",
    "payment_intent.amount_capturable_updated": ":authorize",
}


def _our_own_move(event: _Event) -> bool:
    """A capture, void or authorization our own workflow sent (its idempotency key): that workflow
    retries the call to an answer and records it (3-D Secure's later authorization is the
    customer's request, not ours, and is acted on). Signalling it too would cost every payment a
    workflow task for nothing; only a workflow that is gone is checked for (`_check_own_move`)."""
    suffix = _OWN_MOVES.get(event.type)
    tx_id = event.data.object.metadata.get("tx_id")
    key = event.request.idempotency_key if event.request else None
    return suffix is not None and tx_id is not None and key == f"{tx_id}{suffix}"


def _parsed(payload: bytes) -> _Event:
    try:
        event = _Event.model_validate_json(payload)
    except ValidationError:
        raise InvalidEvent() from None
    if event.type in WEBHOOK_EVENTS and (event.data.object.id is None or event.data.object.status is None):
        raise InvalidEvent("A payment_intent event must carry the PaymentIntent's id and status.")
    if event.type in dispute.WEBHOOK_EVENTS and event.data.object.id is None:
        raise InvalidEvent("A charge.dispute event must carry the Dispute's id.")
    if event.type in refund.WEBHOOK_EVENTS and event.data.object.id is None:
        raise InvalidEvent("A charge.refund event must carry the object's id.")
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
    STRIPE_WEBHOOK_PATH,
    summary="Stripe's events (Stripe, by its signature)",
    responses=public_errors(InvalidSignature, InvalidEvent),
)
async def stripe_webhook(
    request: Request,
    services: ServicesDep,
    temporal: TemporalClient,
    signature: Annotated[str, Header(alias="Stripe-Signature")] = "",
) -> dict[str, bool]:
    """Verified, deduplicated by event id, and passed to the waiting payment's workflow. A session
    of its own, opened only past our own moves (most events: read in short sessions of their own)."""
    payload = await request.body()
    if not request_signed_by_stripe(
        request.scope, payload, signature, services.settings.stripe_webhook_secret.get_secret_value()
    ):
        raise InvalidSignature()
    event = _parsed(payload)
    if _our_own_move(event):
        if event.type in MOVED_AT_STRIPE:
            tx_id = event.data.object.metadata["tx_id"]
            await _check_own_move(temporal, services, _payment_event(event), tx_id)
        return {"received": True, "duplicate": False}

    async with services.sessions() as session, session.begin():
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
            await _signal_payment(
                session, temporal, services, _payment_event(event), event.data.object.metadata.get("tx_id")
            )
        elif event.type in dispute.WEBHOOK_EVENTS:
            await _signal_dispute(services, temporal, event)
        elif event.type in refund.WEBHOOK_EVENTS:
            await _signal_refunds(session, services, temporal, event)
    return {"received": True, "duplicate": False}


async def _signal_dispute(services: ServicesDep, temporal: TemporalClient, event: _Event) -> None:
    """Signal-with-start: the first event of a dispute starts its workflow, later ones wake it up."""
    assert event.data.object.id is not None  # checked by _parsed
    settings = services.settings
    # No fee of ours: the workflow posts the one Stripe's balance transaction shows.
    request = DisputeRequest(event.data.object.id, 0, int(settings.dispute_read_back_interval.total_seconds()))
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


async def _signal_refunds(
    session: AsyncSession, services: ServicesDep, temporal: TemporalClient, event: _Event
) -> None:
    """Signal-with-start the settlement of each refund of ours the event may concern: the Refund
    a `charge.refund.updated` names, or the refunds of the charge's payment that Stripe accepted
    and has not settled (`charge.refunded`). A running settlement reads the Refund back; an ended
    one starts anew and does (a refund may fail days after it succeeded). A refund at Stripe that
    we have no row for is reconciliation's to find."""
    obj = event.data.object
    if event.type == "charge.refund.updated":
        named = Refund.stripe_refund_id == obj.id
        query = select(Refund).where(
            or_(named, Refund.id == obj.metadata["refund_id"]) if "refund_id" in obj.metadata else named
        )
    else:
        query = (
            select(Refund)
            .join(Transaction, Transaction.id == Refund.tx_id)
            .where(
                Transaction.stripe_payment_intent_id == obj.payment_intent,
                Refund.status == "pending",
                Refund.stripe_refund_id.is_not(None),
            )
        )
    read_back = int(services.settings.refund_read_back_interval.total_seconds())
    for row in (await session.execute(query)).scalars():
        stripe_refund_id = row.stripe_refund_id or obj.id
        assert stripe_refund_id is not None  # checked by _parsed
        with temporal_calls():
            await temporal.start_workflow(
                RefundSettlementWorkflow.run,
                RefundSettlement(row.id, row.tx_id, stripe_refund_id, read_back),
                id=refund.settlement_id(row.id),
                task_queue=services.settings.temporal_task_queue,
                task_timeout=WORKFLOW_TASK_TIMEOUT,
                start_signal="stripe_event",
                start_signal_args=[StripeRefundEvent(event.id, event.type, stripe_refund_id)],
            )


async def _signal_payment(
    session: AsyncSession, temporal: TemporalClient, services: ServicesDep, event: StripePaymentEvent, tx_id: str | None
) -> None:
    """To the payment's workflow: a 3-D Secure outcome it waits for, or a capture or void our row
    has not recorded. Our row may not know its PaymentIntent yet (the authorization's answer was
    lost): the PaymentIntent's metadata names it."""
    named = Transaction.stripe_payment_intent_id == event.payment_intent_id
    if tx_id is not None and TX_ID.fullmatch(tx_id):
        named = named | (Transaction.id == tx_id)
    tx = (await session.execute(select(Transaction).where(named))).scalars().first()
    if tx is None or tx.stripe_payment_intent_id not in (None, event.payment_intent_id):
        return  # not ours, or a second PaymentIntent for our payment: reconciliation's to judge
    behind = event.type in MOVED_AT_STRIPE and _behind(tx.status, tx.amount_captured, event.status)
    if not behind and tx.status != "requires_action":
        return  # nothing waits for it
    try:
        with temporal_calls():
            await temporal.get_workflow_handle(tx.workflow_id).signal(PaymentWorkflow.stripe_event, event)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        log.info("webhook_for_finished_workflow", tx_id=tx.id, event_type=event.type)
        if behind:
            await _catch_up(temporal, services, tx.id, event.payment_intent_id)


async def _check_own_move(
    temporal: TemporalClient, services: ServicesDep, event: StripePaymentEvent, tx_id: str
) -> None:
    """Our own capture or void, and our row does not show it yet: its workflow is recording it,
    unless that workflow ended or Temporal lost it before it could (terminated by an operator,
    Temporal's store lost). Then a catch-up records it now, not reconciliation hours later. The row
    is given a few seconds to show it first (`OWN_MOVE_PAUSES`); a describe only after that."""
    if not TX_ID.fullmatch(tx_id):
        return
    row = await _row_still_behind(services.sessions, tx_id, event.status, OWN_MOVE_PAUSES)
    if row is None:
        OWN_MOVES.labels("recorded").inc()
        return
    try:
        with temporal_calls():
            described = await temporal.get_workflow_handle(row.workflow_id).describe()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    else:
        if described.status == WorkflowExecutionStatus.RUNNING:
            OWN_MOVES.labels("workflow_running").inc()
            return
    # A workflow that recorded the move and ended between the last read and the describe.
    if await _row_still_behind(services.sessions, tx_id, event.status, (0.0,)) is None:
        OWN_MOVES.labels("recorded").inc()
        return
    OWN_MOVES.labels("caught_up").inc()
    log.info("own_move_without_its_workflow", tx_id=tx_id, event_type=event.type)
    await _catch_up(temporal, services, tx_id, event.payment_intent_id)


async def _row_still_behind(
    sessions: async_sessionmaker[AsyncSession], tx_id: str, stripe_status: str, pauses: tuple[float, ...]
) -> Any | None:
    """The payment's row if it still shows less than Stripe after the pauses, else None (None too
    for a row we do not have). Read after each pause on a connection of its own: none is held
    through a pause."""
    row = None
    for pause in pauses:
        await asyncio.sleep(pause)  # the workflow's time to record Stripe's answer
        row = await fetch_row(sessions, _OWN_MOVE_ROW, {"tx_id": tx_id})
        if row is None or not _behind(row.status, row.amount_captured, stripe_status):
            return None
    return row


def _behind(status: str, amount_captured: int, stripe_status: str) -> bool:
    """Our row says less than Stripe: captured there and not here, or voided there and open here."""
    if stripe_status == "succeeded":
        return amount_captured == 0
    return stripe_status == "canceled" and status in OPEN_PAYMENT_STATUSES


async def _catch_up(temporal: TemporalClient, services: ServicesDep, tx_id: str, payment_intent_id: str) -> None:
    """The payment's workflow has ended (or Temporal lost it): a workflow of its own reads Stripe
    back and records what it finds (one at a time per payment: a repeat joins the running one)."""
    with temporal_calls():
        await temporal.start_workflow(
            PaymentCatchUpWorkflow.run,
            PaymentCatchUp(tx_id, payment_intent_id),
            id=payment_catch_up.workflow_id(tx_id),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            task_queue=services.settings.temporal_task_queue,
            task_timeout=WORKFLOW_TASK_TIMEOUT,
            search_attributes=TypedSearchAttributes([SearchAttributePair(sa.TX_ID, tx_id)]),
        )
