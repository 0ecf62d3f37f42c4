"""Payments: init (authorize), confirm (capture), cancel (void), read, and a user's history."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, cast

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from payments.api.access import visible_transaction
from payments.api.cards_on_file import active_card, customer_of, keep_card_paid_with, payment_method_of
from payments.api.checkout_address import page_url
from payments.api.contract import errors
from payments.api.deps import CurrentPrincipal, ServicesDep, Session, TemporalClient
from payments.api.errors import (
    ApiError,
    CurrencyNotAccepted,
    Forbidden,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    NotFound,
    PaymentStateConflict,
    ServiceUnavailable,
)
from payments.api.idempotency import REPLAY_HEADER, KeyHeader, fingerprint, required_key
from payments.api.models import (
    Card,
    NextAction,
    PaymentConfirm,
    PaymentInit,
    PaymentMethod,
    RedirectToUrl,
    TransactionList,
    TransactionOut,
    dispute_out,
)
from payments.api.pagination import InvalidCursor, Limit, newest_first
from payments.api.replay_cache import CachedAnswer
from payments.api.services import Services
from payments.api.single_flight import SingleFlight
from payments.api.temporal_calls import (
    UPDATE_LOST,
    closed_or_lost,
    temporal_calls,
    waiting_on_temporal,
)
from payments.config.settings import Settings
from payments.schema.messages import AnotherCard, ConfirmRequest, InitRequest, PaymentRequest, PaymentView, view_of
from payments.schema.party_cache import PartiesRead
from payments.schema.tables import CAPTURED_PAYMENT_STATUSES, Dispute, Transaction, TransactionStatus
from payments.schema.transaction_rows import PaymentRow, payment_by_key
from payments.workflows import search_attributes as sa
from payments.workflows.failures import failure_details
from payments.workflows.payment import PaymentWorkflow, workflow_id
from payments.workflows.policies import WORKFLOW_TASK_TIMEOUT

router = APIRouter(tags=["payments"])


class UnknownParty(ApiError):
    status, code = 422, "unknown_party"


class InvalidCaptureAmount(ApiError):
    status, code = 422, "invalid_capture_amount"


class CardDeclined(ApiError):
    status, code = 402, "card_declined"
    message = "The card was declined: the payment is declined (try another card) or, after the last card, failed."


class CaptureAmountFixed(ApiError):
    status, code = 409, "capture_amount_fixed"
    message = "The payment's first confirm fixed its capture amount; a confirm with another amount is refused."


def transaction_out(tx: Transaction | PaymentRow) -> TransactionOut:
    answer = view_out(view_of(tx))
    assert answer is not None  # a row has its timestamps
    return answer


def view_out(view: PaymentView) -> TransactionOut | None:
    """The resource from a view of the row (None for a view a workflow recorded before views
    carried the row's timestamps: then the row is read)."""
    if view.created_at is None or view.updated_at is None:
        return None
    return TransactionOut(
        id=view.tx_id,
        user_id=view.user_id,
        merchant_id=view.merchant_id,
        amount=view.amount,
        amount_captured=view.amount_captured,
        amount_refunded=view.amount_refunded,
        currency=view.currency,
        status=cast(TransactionStatus, view.status),  # the CHECK constraint holds it to these
        failure_code=view.failure_code,
        failure_message=view.failure_message,
        card=Card(brand=view.card_brand, last4=view.card_last4),
        card_attempts=view.card_attempts,
        idempotency_key=view.idempotency_key,
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


def with_next_action(answer: TransactionOut, view: PaymentView) -> TransactionOut:
    """Init's answer for a payment that waits for 3-D Secure: where the customer authenticates."""
    if view.redirect is None:
        return answer
    redirect = RedirectToUrl(url=view.redirect.url, return_url=view.redirect.return_url)
    action = NextAction(type="redirect_to_url", redirect_to_url=redirect)
    return answer.model_copy(update={"next_action": action, "client_secret": view.client_secret})


def init_fingerprint(body: PaymentInit) -> str:
    """The parameters a key was first used with (the card token only as part of a hash)."""
    if body.saved_card_id is None and not body.save_card:
        return fingerprint(body.user_id, body.merchant_id, body.amount, body.currency, body.card_token)
    card = body.card_token or body.saved_card_id
    return fingerprint(body.user_id, body.merchant_id, body.amount, body.currency, card, body.save_card)


def _update_failure(exc: WorkflowUpdateFailedError) -> ApplicationError | None:
    cause = exc.cause
    return cause if isinstance(cause, ApplicationError) else None


CATCHING_UP = "The payment's authorization is still being recorded (a worker restarted); send the request again."


# How far an unsettled payment has got: a workflow can be behind its row, never ahead of it.
_PROGRESS = {"pending": 0, "requires_action": 1, "declined": 1, "authorized": 2}


def _refuse_if_workflow_behind(exc: WorkflowUpdateFailedError, tx: PaymentRow) -> None:
    """503 when the workflow refused an update for a status its payment's row has already left.
    The row is written inside a workflow task; when a worker dies before completing that task, the
    server runs it again, and the workflow is behind its row until then. A 409 then would tell the
    client no while the row says yes (a confirm refused with "The payment is authorized."): the
    client is asked to send it again instead. A row that has settled, failed or been canceled is
    answered 409 with its status."""
    failure = _update_failure(exc)
    seen = failure_details(failure).get("status") if failure is not None else None
    if seen in _PROGRESS and tx.status in _PROGRESS and _PROGRESS[seen] < _PROGRESS[tx.status]:
        raise ServiceUnavailable(CATCHING_UP, retry_after=1) from exc


async def _check_parties(services: Services, body: PaymentInit, read: PartiesRead) -> None:
    user, merchant = await services.parties.payment_parties(services.sessions, body.user_id, body.merchant_id, read)
    if merchant is None or user is None:
        raise UnknownParty("No such user or merchant.")
    if merchant.currency != body.currency:
        raise CurrencyNotAccepted(f"This merchant accepts {merchant.currency} only.")


async def _card(session: Session, services: Services, body: PaymentInit) -> tuple[str, str | None]:
    """The PaymentMethod to authorize and the Customer it pays on: a saved card only on its own
    user's Customer (another user's card is 404, like a missing one); a card to save on the
    user's Customer, created if this is their first."""
    if body.saved_card_id is not None:
        card = await active_card(session, body.user_id, body.saved_card_id)
        return payment_method_of(services.keyring, card), await customer_of(session, services.stripe, body.user_id)
    assert body.card_token is not None  # PaymentInit holds exactly one of the two
    if body.save_card:
        return body.card_token, await customer_of(session, services.stripe, body.user_id)
    return body.card_token, None


@router.post(
    "/payments/init",
    status_code=status.HTTP_201_CREATED,
    summary="Authorize a card payment (user: self)",
    responses={
        200: {
            "model": TransactionOut,
            "description": "A repeat of the key: the first answer",
            "headers": REPLAY_HEADER,
        },
        **errors(IdempotencyKeyRequired, IdempotencyKeyReused, UnknownParty, CurrencyNotAccepted),
    },
)
async def init_payment(
    body: PaymentInit,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    services: ServicesDep,
    session: Session,
    temporal: TemporalClient,
    idempotency_key: KeyHeader = None,
) -> TransactionOut:
    """Starts the payment's workflow and answers once the card is authorized (or declined, or needs
    3-D Secure). The key (body or `Idempotency-Key`) makes a repeat safe: `idempotency_key_required`
    without one."""
    if not principal.is_("user", body.user_id):
        raise Forbidden("A payment is started by the paying user.")
    key = required_key(body.idempotency_key, idempotency_key)
    digest, scope = init_fingerprint(body), f"payment:{body.user_id}"

    # The replay cache's entry and the parties' in one MGET (the parties are needed on a miss).
    name = services.replays.name(scope, key)
    (raw,), parties = await services.parties.read_payment_parties(body.user_id, body.merchant_id, name)
    cached = services.replays.opened(name, raw)
    if cached is not None:
        if cached.fingerprint != digest:
            raise IdempotencyKeyReused()
        response.status_code, response.headers["Idempotent-Replayed"] = 200, "true"
        return TransactionOut.model_validate(cached.body)

    existing = await payment_by_key(services.sessions, body.user_id, key)
    if existing is not None and existing.request_fingerprint != digest:
        raise IdempotencyKeyReused()
    if existing is not None and existing.status != "pending":
        response.status_code, response.headers["Idempotent-Replayed"] = 200, "true"
        return transaction_out(existing)
    if existing is None:
        await _check_parties(services, body, parties)
    card_token, customer_id = await _card(session, services, body)

    payment = PaymentRequest(
        tx_id=f"tx_{uuid.uuid4().hex}",
        user_id=body.user_id,
        merchant_id=body.merchant_id,
        amount=body.amount,
        currency=body.currency,
        card_token=card_token,
        idempotency_key=key,
        fingerprint=digest,
        authorization_expiry_seconds=int(services.settings.authorization_expiry.total_seconds()),
        return_url=page_url(request),
        customer_id=customer_id,
        save_card=body.save_card,
        max_card_attempts=services.settings.max_card_attempts,
    )
    # Only new payments are bounded: a repeat of a pending one joins it (a client that timed out),
    # and so does a request that joins an identical one in flight here.
    admitted = services.admission.admit if existing is None else nullcontext
    answer, view = await authorize_once(session, temporal, services.settings, payment, services.inits, admitted)
    if body.save_card:
        await keep_card_paid_with(session, services.stripe, services.keyring, view)
    answer = with_next_action(answer, view)
    if view.replayed:
        response.status_code, response.headers["Idempotent-Replayed"] = 200, "true"
    else:
        await services.replays.put(scope, key, CachedAnswer(digest, answer.model_dump(mode="json")))
    return answer


def payment_start(request: PaymentRequest, task_queue: str) -> WithStartWorkflowOperation[Any, Any]:
    """Start the key's PaymentWorkflow, or join its running one (the bench's skeleton starts the same)."""
    return WithStartWorkflowOperation(
        PaymentWorkflow.run,
        request,
        id=workflow_id(request.user_id, request.idempotency_key),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        task_queue=task_queue,
        task_timeout=WORKFLOW_TASK_TIMEOUT,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.TX_ID, request.tx_id),
                SearchAttributePair(sa.USER_ID, request.user_id),
                SearchAttributePair(sa.MERCHANT_ID, request.merchant_id),
                SearchAttributePair(sa.AMOUNT_MINOR, request.amount),
                SearchAttributePair(sa.CURRENCY, request.currency),
                SearchAttributePair(sa.PAYMENT_STATUS, "pending"),
            ]
        ),
    )


async def authorize_once(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    request: PaymentRequest,
    inits: SingleFlight[PaymentView],
    admitted: Callable[[], AbstractContextManager[object]],
) -> tuple[TransactionOut, PaymentView]:
    """Start the key's PaymentWorkflow or join the running one, and wait for the authorization:
    the key's payment and the workflow's answer (a replay or not; 3-D Secure's next step). Whatever
    became of an earlier run of the key, a repeat is a replay, and a repeat with other parameters
    is refused. A run this request started answers from its view of the row it wrote (this
    request's own parameters); a run that joined another's reads the row. Identical requests in
    flight in this process share one update (payments/api/single_flight.py), which alone passes
    admission (`admitted`)."""
    start = payment_start(request, settings.temporal_task_queue)
    flight = (workflow_id(request.user_id, request.idempotency_key), request.fingerprint)

    async def update() -> PaymentView:
        with admitted():
            init = InitRequest(request.fingerprint)
            return await temporal.execute_update_with_start_workflow(
                PaymentWorkflow.init, init, start_workflow_operation=start
            )

    try:
        async with waiting_on_temporal(session):
            view, joined = await inits.run(flight, update)
    except WorkflowUpdateFailedError as exc:
        failure = _update_failure(exc)
        if failure is not None and failure.type == "IdempotencyKeyReused":
            raise IdempotencyKeyReused() from exc
        raise
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:  # the update was lost: a repeat starts or joins the run
            raise ServiceUnavailable(UPDATE_LOST, retry_after=1) from exc
        raise
    if joined:
        view = dataclasses.replace(view, replayed=True)  # another request's answer
    answer = view_out(view) if view.tx_id == request.tx_id else None
    if answer is not None:
        return answer, view
    tx = await session.get(Transaction, view.tx_id, populate_existing=True)
    assert tx is not None
    if tx.request_fingerprint != request.fingerprint:
        # A run started after the key's first run had closed found that payment's row.
        raise IdempotencyKeyReused()
    return transaction_out(tx), view


async def _another_card(session: Session, services: Services, tx: PaymentRow, method: PaymentMethod) -> AnotherCard:
    """A declined payment's next card: a new one, or the paying user's own saved card (on their
    Customer; another user's is 404, like a missing one)."""
    if method.saved_card_id is None:
        assert method.card_token is not None  # PaymentMethod holds exactly one of the two
        return AnotherCard(method.card_token)
    card = await active_card(session, tx.user_id, method.saved_card_id)
    customer_id = await customer_of(session, services.stripe, tx.user_id)
    return AnotherCard(payment_method_of(services.keyring, card), customer_id)


@router.post(
    "/payments/confirm",
    summary="Capture a payment, or pay a declined one with another card (user: owner, merchant: its own, operator)",
    responses=errors(NotFound, Forbidden, PaymentStateConflict, InvalidCaptureAmount, CaptureAmountFixed, CardDeclined),
)
async def confirm_payment(
    body: PaymentConfirm,
    principal: CurrentPrincipal,
    services: ServicesDep,
    session: Session,
    temporal: TemporalClient,
) -> TransactionOut:
    """Capture. A repeat gets the same answer and Stripe sees one capture; the first confirm fixes
    the amount (no `amount`: all of it), and one with another amount is a 409. While the payment's
    workflow catches up after a worker failure: 503 with Retry-After (send it again).

    With `payment_method` (the paying user, on a `declined` payment): the card is authorized on the
    same payment and captured at once; a card that needs 3-D Secure answers `requires_action` with
    its `next_action` (confirm again once authenticated); a decline is 402 `card_declined`, the
    payment still `declined` until its last card (`PAYMENTS_MAX_CARD_ATTEMPTS`), then `failed`."""
    tx = await visible_transaction(services.sessions, body.tx_id, principal)
    if body.payment_method is not None and not principal.is_("user", tx.user_id):
        raise Forbidden("Another card is given by the paying user.")
    if tx.status in CAPTURED_PAYMENT_STATUSES:
        if (body.amount or tx.amount) != tx.amount_captured:
            raise CaptureAmountFixed(f"The payment was captured for {tx.amount_captured}.")
        return transaction_out(tx)
    if tx.status in ("failed", "canceled"):
        raise PaymentStateConflict(tx.status)
    card = await _another_card(session, services, tx, body.payment_method) if body.payment_method else None
    handle = temporal.get_workflow_handle(tx.workflow_id)
    view = None
    try:
        async with waiting_on_temporal(session):
            view = await handle.execute_update(PaymentWorkflow.confirm, ConfirmRequest(body.amount, card))
        answer = view_out(view)
        if answer is not None and answer.status in CAPTURED_PAYMENT_STATUSES:  # the row as the capture wrote it
            return answer
    except WorkflowUpdateFailedError as exc:
        failure = _update_failure(exc)
        if failure is not None and failure.type == "InvalidCaptureAmount":
            raise InvalidCaptureAmount(failure.message) from exc
        if failure is not None and failure.type == "CaptureAmountFixed":
            raise CaptureAmountFixed(failure.message) from exc
        tx = await visible_transaction(services.sessions, body.tx_id, principal)
        if failure is not None and failure.type == "CardDeclined":
            raise CardDeclined(failure.message, extra={"status": tx.status}) from exc
        _refuse_if_workflow_behind(exc, tx)
        raise PaymentStateConflict(tx.status) from exc
    except RPCError as exc:
        await closed_or_lost(handle, exc)
    tx = await visible_transaction(services.sessions, body.tx_id, principal)
    if card is not None and view is not None and view.status == "requires_action":
        return with_next_action(transaction_out(tx), view)
    if tx.status not in CAPTURED_PAYMENT_STATUSES:
        raise PaymentStateConflict(tx.status)
    return transaction_out(tx)


@router.post(
    "/payments/{tx_id}/cancel",
    summary="Void a payment's authorization (user: owner, merchant: its own, operator)",
    responses=errors(NotFound, PaymentStateConflict),
)
async def cancel_payment(
    tx_id: str, principal: CurrentPrincipal, services: ServicesDep, temporal: TemporalClient
) -> TransactionOut:
    """Void the authorization (`canceled`); on a `declined` payment, give up on it (`failed`,
    `requested_by_customer`). A repeat gets the same answer. While the payment's workflow catches
    up after a worker failure: 503 with Retry-After (send it again)."""
    tx = await visible_transaction(services.sessions, tx_id, principal)
    if _given_up(tx):
        return transaction_out(tx)
    if tx.status not in ("authorized", "requires_action", "pending", "declined"):
        raise PaymentStateConflict(tx.status)
    handle = temporal.get_workflow_handle(tx.workflow_id)
    try:
        with temporal_calls():
            await handle.execute_update(PaymentWorkflow.cancel)
    except WorkflowUpdateFailedError as exc:
        tx = await visible_transaction(services.sessions, tx_id, principal)
        _refuse_if_workflow_behind(exc, tx)
        raise PaymentStateConflict(tx.status) from exc
    except RPCError as exc:
        await closed_or_lost(handle, exc)
    tx = await visible_transaction(services.sessions, tx_id, principal)
    if not _given_up(tx):
        raise PaymentStateConflict(tx.status)
    return transaction_out(tx)


def _given_up(tx: PaymentRow) -> bool:
    """What a cancel leaves: a voided authorization, or a declined payment the customer gave up."""
    return tx.status == "canceled" or (tx.status == "failed" and tx.failure_code == "requested_by_customer")


@router.get(
    "/payments/{tx_id}",
    summary="One payment (user: owner, merchant: its own, operator)",
    responses=errors(NotFound),
)
async def get_payment(
    tx_id: str, principal: CurrentPrincipal, services: ServicesDep, session: Session
) -> TransactionOut:
    """Another party's payment answers 404, like a missing one. A disputed payment shows its
    latest dispute."""
    tx = await visible_transaction(services.sessions, tx_id, principal)
    latest = await session.execute(
        select(Dispute).where(Dispute.tx_id == tx.id).order_by(Dispute.created_at.desc(), Dispute.id.desc()).limit(1)
    )
    dispute = latest.scalar_one_or_none()
    return transaction_out(tx).model_copy(update={"dispute": dispute_out(dispute) if dispute else None})


@router.get(
    "/transactions/{user_id}",
    summary="A user's payments (user: self, operator)",
    responses=errors(NotFound, InvalidCursor),
)
async def list_transactions(
    user_id: str,
    principal: CurrentPrincipal,
    session: Session,
    limit: Limit = 20,
    cursor: str | None = None,
) -> TransactionList:
    """A user's payments, newest first (keyset pagination: stable while new payments arrive)."""
    if not (principal.is_("operator") or principal.is_("user", user_id)):
        raise NotFound()
    query = select(Transaction).where(Transaction.user_id == user_id)
    page, next_cursor = await newest_first(session, query, Transaction.created_at, Transaction.id, limit, cursor)
    return TransactionList(data=[transaction_out(tx) for tx in page], next_cursor=next_cursor)
