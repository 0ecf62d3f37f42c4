"""PostgreSQL side of a payment: the transaction row, its status changes and the capture posting,
each in one database transaction with its outbox event (and ledger entries for the capture)."""

from __future__ import annotations

import functools
from typing import Any, cast

from sqlalchemy import BigInteger, String, Table, bindparam, func, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from payments.activities import ledger, ledger_statements, metrics
from payments.activities.outbox import add_event
from payments.config.keyring import Keyring
from payments.schema.database import constant
from payments.schema.driver import Statement, fetch_row
from payments.schema.messages import CaptureRequest, PaymentRequest, PaymentView, StatusChange, StripeAhead, view_of
from payments.schema.tables import OPEN_PAYMENT_STATUSES, Merchant, OutboxEvent, Transaction
from payments.schema.transaction_rows import TRANSACTIONS, payment_by_key

# What an event carries (event_payload) by the transaction's column: ids, amounts and status.
_PAYLOAD_FIELDS = {
    "tx_id": "id",
    **{name: name for name in ("user_id", "merchant_id", "status", "amount", "amount_captured", "amount_refunded")},
    "currency": "currency",
}


def event_payload(tx: Any) -> dict[str, Any]:
    """What consumers of payments.events see: ids, amounts and status; never card data."""
    return {name: getattr(tx, column) for name, column in _PAYLOAD_FIELDS.items()}


async def locked_transaction(session: AsyncSession, tx_id: str) -> Transaction:
    tx = await session.get(Transaction, tx_id, with_for_update=True)
    if tx is None:
        raise LookupError(f"transaction {tx_id} does not exist")
    return tx


class PaymentRecords:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], keyring: Keyring) -> None:
        self._sessions = sessions
        self._keyring = keyring

    @activity.defn
    async def record_payment(self, request: PaymentRequest) -> PaymentView:
        """Insert the pending transaction, or return the one that already holds this key:
        UNIQUE(user_id, idempotency_key) is the durable guard once a workflow has left Temporal."""
        sealed = self._keyring.seal(request.card_token.encode(), request.tx_id.encode())
        # One statement that decides alone (the key's UNIQUE): autocommit, no BEGIN and COMMIT.
        new = {
            "id": request.tx_id,
            "user_id": request.user_id,
            "merchant_id": request.merchant_id,
            "amount": request.amount,
            "currency": request.currency,
            "idempotency_key": request.idempotency_key,
            "request_fingerprint": request.fingerprint,
            "card_token": sealed.blob,
            "card_token_key_id": sealed.key_id,
            "workflow_id": activity.info().workflow_id,
        }
        tx = await fetch_row(self._sessions, _RECORD_PAYMENT, new)
        if tx is None:  # the key's row was there already: read it (a retry, or a repeat of the key)
            tx = await payment_by_key(self._sessions, request.user_id, request.idempotency_key)
        if tx is None:
            raise LookupError("the key's transaction was deleted while it was recorded")
        return view_of(tx)

    @activity.defn
    async def record_status(self, change: StatusChange) -> PaymentView:
        """One UPDATE … RETURNING (the row locked and its old status read in the same statement)
        and the event: no ORM load of the row first."""
        values: dict[str, Any] = {"status": change.status}
        if change.status in ("requires_action", "authorized"):  # another card after a decline
            values["failure_code"] = values["failure_message"] = None
        for field in ("card_brand", "card_last4", "failure_code", "failure_message", "card_attempts"):
            if getattr(change, field) is not None:
                values[field] = getattr(change, field)
        if change.payment_intent_id:
            values["stripe_payment_intent_id"] = change.payment_intent_id
        statement = _status_statement(tuple(values), change.event_type, change.status == "declined")
        # One statement (the update and its event in CTEs) is atomic alone: autocommit.
        tx = await fetch_row(self._sessions, statement, values | {"tx_id": change.tx_id})
        if tx is None:
            raise LookupError("the transaction does not exist")
        view = view_of(tx)
        if tx.old_status != change.status:
            metrics.PAYMENTS.labels(change.status, change.failure_code or "").inc()
        return view

    @activity.defn
    async def record_capture(self, capture: CaptureRequest) -> PaymentView:
        """Confirmed: the captured amount, the ledger postings (ours and Stripe's fee) and the
        event, all or nothing. Also for a payment recorded canceled or failed that Stripe captured
        (reconciliation follows it). The row is updated only if nothing was captured yet (else a
        retried activity: already recorded), in the statement that reads its merchant's fee."""
        captured = {"tx_id": capture.tx_id, "amount_captured": capture.amount}
        if capture.stripe_fee is not None:
            captured["stripe_fee"] = capture.stripe_fee
        tx = await fetch_row(self._sessions, _posted_capture(capture.stripe_fee is not None), captured)
        posted = tx is not None
        if tx is None:  # captured already (a retry), or the first capture to post to an account
            tx, posted = await self._capture_in_transaction(capture)
        view = view_of(tx)
        if posted:
            metrics.CAPTURES.labels(view.currency).inc()
        return view

    async def _capture_in_transaction(self, capture: CaptureRequest) -> tuple[Any, bool]:
        """record_capture where its one statement updated nothing: the row and whether this posted
        it. Creates the accounts the capture posts to the first time (ledger.account_ids)."""
        async with self._sessions.begin() as session:
            captured = {"tx_id": capture.tx_id, "amount_captured": capture.amount}
            tx = (await session.execute(_capture_statement(), captured)).one_or_none()
            if tx is not None:
                await _post_capture(session, tx, capture.amount, tx.fee_bps, capture.stripe_fee, with_event=False)
                return tx, True
            tx = (await session.execute(select(TRANSACTIONS).where(TRANSACTIONS.c.id == capture.tx_id))).one_or_none()
            if tx is None:
                raise LookupError(f"transaction {capture.tx_id} does not exist")
            if tx.amount_captured == 0:  # not captured, yet not updated: its merchant is missing
                raise LookupError(f"merchant {tx.merchant_id} does not exist")
            return tx, False

    @activity.defn
    async def follow_stripe(self, ahead: StripeAhead) -> PaymentView:
        """Record what Stripe holds where our row is behind it: a capture our books never heard of
        (whatever the row says, even canceled or failed: the customer was charged), or a void of a
        payment still open here. Anything else leaves the row as it is."""
        intent = ahead.intent
        async with self._sessions.begin() as session:
            tx = await locked_transaction(session, ahead.tx_id)
            found = None
            if tx.stripe_payment_intent_id not in (None, intent.payment_intent_id):
                pass  # another PaymentIntent naming this payment: reconciliation flags it, nothing moves here
            elif intent.status == "succeeded" and tx.amount_captured == 0:
                merchant = await session.get(Merchant, tx.merchant_id)
                if merchant is None:
                    raise LookupError(f"merchant {tx.merchant_id} does not exist")
                tx.stripe_payment_intent_id = tx.stripe_payment_intent_id or intent.payment_intent_id
                tx.status, tx.amount_captured = "confirmed", intent.amount_received
                tx.failure_code = tx.failure_message = None
                await _post_capture(session, tx, intent.amount_received, merchant.fee_bps)
                found = "captured"
            elif intent.status == "canceled" and tx.status in OPEN_PAYMENT_STATUSES:
                tx.status = "canceled"
                tx.failure_code = ahead.failure_code or "canceled_at_stripe"
                tx.failure_message = ahead.failure_message
                await add_event(session, "payment.canceled", tx.id, event_payload(tx))
                found = "canceled"
            await session.flush()
            await session.refresh(tx, ["updated_at"])  # the view carries the row's, as written
            view = view_of(tx)
        if found == "captured":
            metrics.CAPTURES.labels(view.currency).inc()
        elif found == "canceled":
            metrics.PAYMENTS.labels("canceled", view.failure_code or "").inc()
        if found is not None:
            metrics.STRIPE_AHEAD.labels(found).inc()
        return view


# Their tables, for statements that need no ORM object (the hot path's UPDATE … RETURNING).
MERCHANTS = cast(Table, Merchant.__table__)


def _status_event(updated: Any, event_type: str, declined: bool) -> Any:
    """The outbox row of a status change, inserted from the updated row in the UPDATE's statement:
    the key and payload that add_event and event_payload give (one decline per card tried: each
    is its own event)."""
    row = updated.c
    key = row.id + constant(f":{event_type}")
    if declined:
        key = key + constant(":card-") + sql_cast(row.card_attempts, String)
    fields = _PAYLOAD_FIELDS.items()
    payload = func.jsonb_build_object(*(item for name, column in fields for item in (constant(name), row[column])))
    source = select(constant(event_type), row.id, key, payload).select_from(updated)
    return (
        insert(OutboxEvent)
        .from_select(["type", "aggregate_id", "event_key", "payload"], source)
        .on_conflict_do_nothing(index_elements=["event_key"])
        .cte("status_event")
    )


@functools.cache
def _status_statement(columns: tuple[str, ...], event_type: str | None, declined: bool) -> Statement:
    """record_status's statement for one shape of change (the columns it sets, its event), built
    once: the row's id and the new values are its bind parameters."""
    old = (  # the status the UPDATE replaces, read under the row's lock (even after a concurrent writer)
        select(TRANSACTIONS.c.id, TRANSACTIONS.c.status.label("old_status"))
        .where(TRANSACTIONS.c.id == bindparam("tx_id"))
        .with_for_update()
        .subquery("old")
    )
    updated = (
        update(TRANSACTIONS)
        .where(TRANSACTIONS.c.id == old.c.id)
        .values({column: bindparam(column) for column in columns} | {"updated_at": func.now()})
        .returning(*TRANSACTIONS.c, old.c.old_status)
        .cte("updated")
    )
    statement = select(updated)
    return Statement.of(statement.add_cte(_status_event(updated, event_type, declined)) if event_type else statement)


@functools.cache
def _posted_capture(stripe_fee: bool) -> Statement:
    """record_capture's one statement: the capture with its postings and event."""
    return Statement.of(_capture_statement(posted=True, stripe_fee=stripe_fee))


@functools.cache
def _capture_statement(posted: bool = False, stripe_fee: bool = False) -> Any:
    """record_capture's UPDATE (only while nothing is captured) with its merchant's fee rate and
    its event, in one statement; parameters `tx_id` and `amount_captured`. `posted`: with the
    capture's postings too (and Stripe's fee's, parameter `stripe_fee`, if `stripe_fee`), and only
    if every account they post to exists (else nothing is updated)."""
    conditions = [
        TRANSACTIONS.c.id == bindparam("tx_id"),
        TRANSACTIONS.c.amount_captured == 0,
        MERCHANTS.c.id == TRANSACTIONS.c.merchant_id,
    ]
    if posted:  # the accounts it posts to, as codes with placeholders for the row's columns
        codes = [*ledger.capture_entries("{merchant_id}", 0, 0), *(ledger.stripe_fee_entries(0) if stripe_fee else ())]
        conditions.append(ledger_statements.accounts_exist(codes, TRANSACTIONS.c))
    captured = (
        update(TRANSACTIONS)
        .where(*conditions)
        .values(
            status="confirmed",
            amount_captured=bindparam("amount_captured"),
            failure_code=None,
            failure_message=None,
            updated_at=func.now(),
        )
        .returning(*TRANSACTIONS.c, MERCHANTS.c.fee_bps)
        .cte("updated")
    )
    # Its event in the same statement (a CTE), only if the row was updated.
    statement = select(captured).add_cte(_status_event(captured, "payment.confirmed", declined=False))
    if not posted:
        return statement
    # The ledger's own rules, its int arithmetic on the updated row's columns.
    amount: Any = captured.c.amount_captured
    fee: Any = ledger.platform_fee(amount, cast(Any, captured.c.fee_bps))
    postings = [ledger.capture_posting("{id}", "{merchant_id}", "{currency}", amount, fee)]
    if stripe_fee:
        stripe_fee_amount: Any = bindparam("stripe_fee", type_=BigInteger)
        postings.append(ledger.stripe_fee_posting("{id}", "{currency}", stripe_fee_amount))
    return statement.add_cte(*ledger_statements.posted_in_statement(captured, postings))


# record_payment's INSERT: the new row, or none when the key's row is there already. Into the table,
# not the entity: rows, not ORM objects (the ORM's bulk insert cost about 1 ms of the worker's CPU).
_NEW_PAYMENT = (
    "id",
    "user_id",
    "merchant_id",
    "amount",
    "currency",
    "idempotency_key",
    "request_fingerprint",
    "card_token",
    "card_token_key_id",
    "workflow_id",
)
_RECORD_PAYMENT = Statement.of(
    insert(TRANSACTIONS)
    .values({column: bindparam(column) for column in _NEW_PAYMENT} | {"status": "pending"})
    .on_conflict_do_nothing(index_elements=["user_id", "idempotency_key"])
    .returning(*TRANSACTIONS.c)
)


async def _post_capture(
    session: AsyncSession, tx: Any, amount: int, fee_bps: int, stripe_fee: int | None = None, with_event: bool = True
) -> None:
    """The capture posting (and Stripe's fee on it, when known: both in one pair of statements)
    and its event (unless the caller's UPDATE wrote it), in the caller's transaction, for a row
    already set confirmed with `amount` captured."""
    fee = ledger.platform_fee(amount, fee_bps)
    postings = [ledger.capture_posting(tx.id, tx.merchant_id, tx.currency, amount, fee)]
    if stripe_fee is not None:
        postings.append(ledger.stripe_fee_posting(tx.id, tx.currency, stripe_fee))
    await ledger.post_all(session, postings)
    if with_event:
        await add_event(session, "payment.confirmed", tx.id, event_payload(tx))
