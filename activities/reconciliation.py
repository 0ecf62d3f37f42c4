"""Reconciliation: our books against Stripe, a page at a time (memory bounded by the page size).

Stripe-side phases list PaymentIntents, Refunds, Transfers and Disputes created in the window (plus
a margin) and compare each with our row named in its metadata (a dispute: by its Stripe id);
our-side phases page our rows in the window that no Stripe listing of this run has shown; the
ledger phase checks the invariants.
Safe fixes go through the saga's own activities (one code path posts money); the rest is logged
`needs_review`, once per discrepancy and subject however many runs see it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from sqlalchemy import delete, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities import metrics
from activities.outbox import add_event
from activities.payment_records import PaymentRecords
from activities.payout_records import PayoutRecords
from activities.refund_records import RefundRecords
from activities.stripe_errors import final_or_transient
from activities.stripe_payments import StripePayments
from schema.messages import (
    CaptureRequest,
    PayoutTransfer,
    ReconciliationPage,
    ReconciliationPageResult,
    ReconciliationTotals,
    StatusChange,
    StripeRefund,
    VoidRequest,
)
from schema.tables import (
    Dispute,
    Payout,
    ReconciliationLog,
    ReconciliationRun,
    ReconciliationSeen,
    Refund,
    Transaction,
)

OPEN = ("pending", "requires_action", "authorized")
SETTLED = ("confirmed", "partially_refunded", "refunded")
STRIPE_PHASES = ("payment_intents", "refunds", "transfers", "disputes")


@dataclass(frozen=True)
class Tuning:
    margin: timedelta
    stuck_after: timedelta
    page_size: int
    pages_per_activity: int


Obj = dict[str, Any]  # a Stripe object as JSON


def _meta(obj: Obj, key: str) -> str | None:
    """Our id in a Stripe object's metadata."""
    return (obj.get("metadata") or {}).get(key)


def _ts(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _stripe_object_of(row: Transaction | Refund | Payout) -> tuple[str, str | None]:
    """The Stripe list and id of the object our row names."""
    if isinstance(row, Refund):
        return "refunds", row.stripe_refund_id
    if isinstance(row, Payout):
        return "transfers", row.stripe_transfer_id
    return "payment_intents", row.stripe_payment_intent_id


class Reconciler:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        stripe_client: stripe.StripeClient,
        temporal: Client,
        tuning: Tuning,
        steps: tuple[PaymentRecords, RefundRecords, PayoutRecords, StripePayments],
    ) -> None:
        self._sessions = sessions
        self._stripe = stripe_client
        self._temporal = temporal
        self._tuning = tuning
        self._payments, self._refunds, self._payouts, self._stripe_payments = steps

    # --- the run ---

    @activity.defn
    async def open_run(self, page: ReconciliationPage) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                insert(ReconciliationRun)
                .values(
                    id=page.run_id,
                    window_start=_ts(page.window_start),
                    window_end=_ts(page.window_end),
                    status="running",
                )
                .on_conflict_do_nothing(index_elements=["id"])
            )

    @activity.defn
    async def close_run(self, totals: ReconciliationTotals) -> None:
        """The counts stay on the run; the scratch rows go."""
        async with self._sessions.begin() as session:
            run = await session.get(ReconciliationRun, totals.run_id, with_for_update=True)
            assert run is not None
            run.status, run.counts, run.finished_at = "finished", totals.counts, datetime.now(UTC)
            await session.execute(delete(ReconciliationSeen).where(ReconciliationSeen.run_id == run.id))

    @activity.defn
    async def reconcile_page(self, page: ReconciliationPage) -> ReconciliationPageResult:
        counts: Counter[str] = Counter()
        if page.phase in STRIPE_PHASES:
            cursor = await self._stripe_page(page, counts)
        elif page.phase == "ledger":
            await self._ledger(page.run_id, counts)
            cursor = None
        else:
            cursor = await self._our_page(page, counts)
        return ReconciliationPageResult(cursor, dict(counts))

    # --- Stripe's side ---

    async def _stripe_page(self, page: ReconciliationPage, counts: Counter[str]) -> str | None:
        """Up to `pages_per_activity` pages of Stripe's list, the next one listed while one is
        checked; returns where the next activity starts (None: the list is done)."""
        cursor = page.cursor
        listing = asyncio.ensure_future(self._list(page, cursor))
        try:
            for n in range(self._tuning.pages_per_activity):
                listed = await listing
                objects: list[Obj] = listed["data"]
                cursor = str(objects[-1]["id"]) if listed["has_more"] else None
                if cursor is not None and n + 1 < self._tuning.pages_per_activity:
                    listing = asyncio.ensure_future(self._list(page, cursor))
                await self._check(page, objects, counts)
                if cursor is None:
                    break
        finally:
            listing.cancel()  # an error while checking leaves no listing behind
        return cursor

    async def _list(self, page: ReconciliationPage, cursor: str | None) -> dict[str, Any]:
        """One page of Stripe's list, read raw (plain JSON: a page of 100 StripeObjects costs more
        to build than everything else here)."""
        margin = self._tuning.margin
        params: dict[str, Any] = {
            "limit": self._tuning.page_size,
            "created": {
                "gte": int((_ts(page.window_start) - margin).timestamp()),
                "lt": int((_ts(page.window_end) + margin).timestamp()),
            },
        }
        if cursor:
            params["starting_after"] = cursor
        return await self._get(f"/v1/{page.phase}", **params)

    async def _check(self, page: ReconciliationPage, objects: list[Obj], counts: Counter[str]) -> None:
        """Each object against our row named in it (all read in one query), then marked seen."""
        column: Any
        compare: Any
        column, ours_of, compare = {
            "payment_intents": (Transaction.id, lambda o: _meta(o, "tx_id"), self._intent),
            "refunds": (Refund.id, lambda o: _meta(o, "refund_id"), self._refund),
            "transfers": (Payout.id, lambda o: _meta(o, "payout_id"), self._transfer),
            "disputes": (Dispute.stripe_dispute_id, lambda o: o["id"], self._dispute),
        }[page.phase]
        named = [i for i in (ours_of(o) for o in objects) if i]
        async with self._sessions() as session:
            rows = (await session.execute(select(column.class_).where(column.in_(named)))).scalars()
            ours = {getattr(row, column.key): row for row in rows}
        for obj in objects:
            counts["checked"] += 1
            await compare(page.run_id, obj, ours.get(ours_of(obj) or ""), counts)
        if objects:
            async with self._sessions.begin() as session:
                await session.execute(
                    insert(ReconciliationSeen)
                    .values([{"run_id": page.run_id, "stripe_id": o["id"]} for o in objects])
                    .on_conflict_do_nothing()
                )

    async def _get(self, path: str, **params: Any) -> dict[str, Any]:
        try:
            response = await self._stripe.raw_request_async("get", path, **params)
        except stripe.StripeError as exc:
            raise final_or_transient(exc) from exc
        return dict(json.loads(response.body))

    async def _intent(self, run_id: str, intent: Obj, tx: Transaction | None, counts: Counter[str]) -> None:
        if tx is None:
            await self._orphan_intent(run_id, intent, counts)
            return
        details: dict[str, Any]
        if intent["amount"] != tx.amount or intent["currency"] != tx.currency:
            details = {"ours": [tx.amount, tx.currency], "stripe": [intent["amount"], intent["currency"]]}
            await self._log(run_id, counts, "amount_mismatch", intent["id"], details, tx_id=tx.id)
        elif intent["status"] == "succeeded" and tx.status in OPEN and not self._settling(tx):
            await self._follow_capture(run_id, tx, intent, counts)
        elif (
            intent["status"] == "succeeded" and tx.status in SETTLED and tx.amount_captured != intent["amount_received"]
        ):
            details = {"ours": tx.amount_captured, "stripe": intent["amount_received"]}
            await self._log(run_id, counts, "captured_amount_mismatch", intent["id"], details, tx_id=tx.id)
        elif intent["status"] == "canceled" and tx.status in SETTLED:
            details = {"ours": tx.status, "stripe": intent["status"]}
            await self._log(run_id, counts, "confirmed_but_canceled_at_stripe", intent["id"], details, tx_id=tx.id)
        elif tx.status in OPEN and await self._stuck(tx):
            await self._settle_stuck(run_id, tx, intent, counts)

    async def _orphan_intent(self, run_id: str, intent: Obj, counts: Counter[str]) -> None:
        """A PaymentIntent no row of ours names. Our row is always written before the
        authorization, so an old enough one is an orphan: void it if it holds money on a card."""
        if datetime.fromtimestamp(intent["created"], UTC) > datetime.now(UTC) - self._tuning.margin:
            return  # too young to judge
        if intent["status"] == "requires_capture":
            await self._stripe_payments.void_payment(VoidRequest(intent["id"], intent["id"], "abandoned"))
            await self._log(
                run_id, counts, "orphan_authorization_voided", intent["id"], {"amount": intent["amount"]}, fixed=True
            )
        elif intent["status"] == "succeeded":
            details = {"amount_received": intent["amount_received"], "currency": intent["currency"]}
            await self._log(run_id, counts, "stripe_payment_without_record", intent["id"], details)

    async def _follow_capture(self, run_id: str, tx: Transaction, intent: Obj, counts: Counter[str]) -> None:
        """Stripe captured and we did not record it (a crash, or a capture out of band): follow Stripe."""
        if tx.stripe_payment_intent_id is None:
            await self._payments.record_status(StatusChange(tx.id, tx.status, None, payment_intent_id=intent["id"]))
        await self._payments.record_capture(CaptureRequest(tx.id, intent["id"], intent["amount_received"]))
        details = {"was": tx.status, "captured": intent["amount_received"]}
        await self._log(run_id, counts, "captured_at_stripe", intent["id"], details, tx_id=tx.id, fixed=True)

    def _settling(self, row: Transaction | Refund | Payout) -> bool:
        """Written within the margin: a row behind Stripe this young is a saga whose own write is
        still on its way (a chaos run's reconciliation 'fixed' five such), not a discrepancy; a
        later run judges it."""
        return row.updated_at > datetime.now(UTC) - self._tuning.margin

    async def _stuck(self, tx: Transaction) -> bool:
        """Open longer than the threshold with no workflow running to finish it."""
        if tx.updated_at > datetime.now(UTC) - self._tuning.stuck_after:
            return False
        try:
            described = await self._temporal.get_workflow_handle(tx.workflow_id).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            return True
        return described.status != WorkflowExecutionStatus.RUNNING

    async def _settle_stuck(self, run_id: str, tx: Transaction, intent: Obj | None, counts: Counter[str]) -> None:
        """Kill Bill's janitor: nothing will finish this payment, so settle it as Stripe has it."""
        if intent is None or intent["status"] in ("requires_payment_method", "requires_confirmation"):
            change = StatusChange(tx.id, "failed", "payment.failed", failure_code="abandoned")
        elif intent["status"] == "requires_capture":
            await self._stripe_payments.void_payment(VoidRequest(tx.id, intent["id"], "abandoned"))
            change = StatusChange(tx.id, "canceled", "payment.canceled", failure_code="authorization_abandoned")
        elif intent["status"] == "canceled":
            change = StatusChange(tx.id, "canceled", "payment.canceled", failure_code="canceled_at_stripe")
        else:
            return  # requires_action, processing: still moving at Stripe; a later run looks again
        if intent is not None and tx.stripe_payment_intent_id is None:
            change = dataclasses.replace(change, payment_intent_id=intent["id"])
        await self._payments.record_status(change)
        details = {"was": tx.status, "now": change.status, "stripe": intent["status"] if intent else None}
        await self._log(run_id, counts, "stuck_payment_settled", tx.id, details, tx_id=tx.id, fixed=True)

    async def _refund(self, run_id: str, refund: Obj, ours: Refund | None, counts: Counter[str]) -> None:
        if ours is None:
            details = {"amount": refund["amount"], "payment_intent": refund["payment_intent"]}
            await self._log(run_id, counts, "stripe_refund_without_record", refund["id"], details)
        elif ours.amount != refund["amount"]:
            details = {"ours": ours.amount, "stripe": refund["amount"]}
            await self._log(run_id, counts, "refund_amount_mismatch", refund["id"], details, refund_id=ours.id)
        elif ours.status != "succeeded" and refund["status"] == "succeeded" and not self._settling(ours):
            await self._refunds.record_refund(StripeRefund(ours.id, refund["id"]))
            details = {"was": ours.status}
            await self._log(
                run_id, counts, "refund_behind_stripe", refund["id"], details, refund_id=ours.id, fixed=True
            )

    async def _transfer(self, run_id: str, transfer: Obj, ours: Payout | None, counts: Counter[str]) -> None:
        if ours is None:
            details = {"amount": transfer["amount"], "destination": transfer["destination"]}
            await self._log(run_id, counts, "stripe_transfer_without_payout", transfer["id"], details)
        elif ours.amount != transfer["amount"]:
            details = {"ours": ours.amount, "stripe": transfer["amount"]}
            await self._log(run_id, counts, "payout_amount_mismatch", transfer["id"], details, payout_id=ours.id)
        elif ours.status == "in_transit" and not self._settling(ours):
            await self._payouts.record_payout_paid(PayoutTransfer(ours.id, transfer["id"]))
            await self._log(run_id, counts, "payout_behind_stripe", transfer["id"], {}, payout_id=ours.id, fixed=True)
        elif ours.status == "failed":
            details = {"ours": ours.status, "transfer": transfer["id"]}
            await self._log(run_id, counts, "failed_payout_transferred", transfer["id"], details, payout_id=ours.id)

    async def _dispute(self, run_id: str, dispute: Obj, ours: Dispute | None, counts: Counter[str]) -> None:
        """A dispute we never heard of (its webhooks lost), or one whose amount or status differs
        from Stripe's for longer than its workflow takes to follow (the read-back)."""
        stripe_side = {
            "stripe": dispute["amount"],
            "status": dispute["status"],
            "payment_intent": dispute["payment_intent"],
        }
        if ours is None:
            await self._log(run_id, counts, "stripe_dispute_without_record", dispute["id"], stripe_side)
        elif ours.amount != dispute["amount"]:
            details = stripe_side | {"ours": ours.amount, "dispute_id": ours.id}
            await self._log(run_id, counts, "dispute_amount_mismatch", dispute["id"], details, tx_id=ours.tx_id)
        elif ours.status != dispute["status"] and ours.updated_at < datetime.now(UTC) - self._tuning.stuck_after:
            details = stripe_side | {"ours": ours.status, "dispute_id": ours.id}
            await self._log(run_id, counts, "dispute_status_mismatch", dispute["id"], details, tx_id=ours.tx_id)

    # --- our side: rows in the window that no Stripe listing of this run showed ---

    async def _our_page(self, page: ReconciliationPage, counts: Counter[str]) -> str | None:
        table: Any
        table, stripe_id, statuses = {
            "our_transactions": (Transaction, Transaction.stripe_payment_intent_id, OPEN + SETTLED),
            "our_refunds": (Refund, Refund.stripe_refund_id, ("succeeded",)),
            "our_payouts": (Payout, Payout.stripe_transfer_id, ("paid",)),
        }[page.phase]
        seen = select(ReconciliationSeen.stripe_id).where(
            ReconciliationSeen.run_id == page.run_id, ReconciliationSeen.stripe_id == stripe_id
        )
        query = select(table).where(
            table.created_at >= _ts(page.window_start),
            table.created_at < _ts(page.window_end),
            table.status.in_(statuses),
            ~seen.exists(),
        )
        if page.cursor:
            created, last_id = page.cursor.split("|")
            query = query.where(tuple_(table.created_at, table.id) > tuple_(_ts(created), last_id))
        async with self._sessions() as session:
            rows = list(
                (
                    await session.execute(query.order_by(table.created_at, table.id).limit(self._tuning.page_size))
                ).scalars()
            )
        for row in rows:
            counts["checked"] += 1
            await self._missing_at_stripe(page.run_id, row, counts)
        if len(rows) < self._tuning.page_size:
            return None
        return f"{rows[-1].created_at.isoformat()}|{rows[-1].id}"

    async def _missing_at_stripe(self, run_id: str, row: Transaction | Refund | Payout, counts: Counter[str]) -> None:
        if isinstance(row, Transaction) and row.status not in SETTLED:
            if await self._stuck(row):
                intent = await self._retrieve("payment_intents", row.stripe_payment_intent_id)
                await self._settle_stuck(run_id, row, intent, counts)
            return
        if await self._retrieve(*_stripe_object_of(row)) is not None:
            return  # made at Stripe while this run read its newest-first list (a chaos run): there
        amount = {"amount": row.amount}
        if isinstance(row, Refund):
            await self._log(run_id, counts, "refund_missing_at_stripe", row.id, amount, refund_id=row.id)
        elif isinstance(row, Payout):
            await self._log(run_id, counts, "payout_missing_at_stripe", row.id, amount, payout_id=row.id)
        else:
            details = {"ours": row.status, "payment_intent": row.stripe_payment_intent_id}
            await self._log(run_id, counts, "confirmed_but_missing_at_stripe", row.id, details, tx_id=row.id)

    async def _retrieve(self, kind: str, stripe_id: str | None) -> Obj | None:
        """One Stripe object by id (`kind`: its list's path), or None where Stripe has none."""
        if stripe_id is None:
            return None
        try:
            return await self._get(f"/v1/{kind}/{stripe_id}")
        except ApplicationError as refused:
            if (refused.details[0] or {}).get("http_status") == 404:
                return None
            raise

    # --- the ledger ---

    async def _ledger(self, run_id: str, counts: Counter[str]) -> None:
        async with self._sessions() as session:
            unbalanced = (await session.execute(text(UNBALANCED))).all()
            payables = (await session.execute(text(PAYABLE_MISMATCH))).all()
        for ledger_tx_id, currency, total in unbalanced:
            details = {"currency": currency, "sum": int(total)}
            await self._log(run_id, counts, "ledger_unbalanced", str(ledger_tx_id), details)
        for merchant_id, expected, actual in payables:
            details = {"expected": int(expected), "ledger": int(actual)}
            await self._log(run_id, counts, "merchant_payable_mismatch", merchant_id, details)

    # --- the log ---

    async def _log(
        self,
        run_id: str,
        counts: Counter[str],
        discrepancy: str,
        subject: str,
        details: dict[str, Any],
        fixed: bool = False,
        **ids: str,
    ) -> None:
        status = "auto_fixed" if fixed else "needs_review"
        async with self._sessions.begin() as session:
            created = await session.execute(
                insert(ReconciliationLog)
                .values(
                    run_id=run_id,
                    discrepancy=discrepancy,
                    subject=subject,
                    details=details,
                    resolution_status=status,
                    **ids,
                )
                .on_conflict_do_nothing(
                    index_elements=["discrepancy", "subject"], index_where=text("resolution_status = 'needs_review'")
                )
                .returning(ReconciliationLog.id)
            )
            log_id = created.scalar_one_or_none()
            if log_id is None:
                return  # already open from an earlier run: nothing new
            await add_event(
                session,
                "reconciliation.discrepancy",
                subject,
                {"log_id": log_id, "run_id": run_id, "discrepancy": discrepancy, "status": status, **ids, **details},
                occurrence=f"{discrepancy}:{run_id}",  # once per run; a later run may find it again
            )
        counts[status] += 1
        metrics.DISCREPANCIES.labels(discrepancy, status).inc()


# Can only be non-empty if someone bypassed the commit-time trigger; checked all the same.
UNBALANCED = """
SELECT ledger_transaction_id, currency, sum(amount) FROM ledger_entries
GROUP BY ledger_transaction_id, currency HAVING sum(amount) <> 0
"""

# Each merchant's payable from first principles: captures less fees, less refunds net of the fee
# share given back, less payouts reserved or paid, less disputes (amount and fee once Stripe withdrew
# them; a reinstated amount comes back), plus transfer reversals taken back against a deficit;
# against what the ledger says.
PAYABLE_MISMATCH = """
WITH sales AS (
    SELECT t.merchant_id,
           sum(t.amount_captured - div(t.amount_captured * m.fee_bps, 10000)
               - (t.amount_refunded - div(div(t.amount_captured * m.fee_bps, 10000) * t.amount_refunded,
                                          greatest(t.amount_captured, 1)))) AS net
    FROM transactions t JOIN merchants m ON m.id = t.merchant_id
    WHERE t.amount_captured > 0 GROUP BY t.merchant_id
), paid AS (
    SELECT merchant_id, sum(amount) AS amount FROM payouts
    WHERE status IN ('in_transit', 'paid') GROUP BY merchant_id
), disputed AS (
    SELECT merchant_id, coalesce(sum(amount + fee) FILTER (WHERE withdrawn_at IS NOT NULL), 0)
                        - coalesce(sum(amount) FILTER (WHERE reinstated_at IS NOT NULL), 0) AS amount
    FROM disputes GROUP BY merchant_id
), reversed AS (
    SELECT merchant_id, sum(amount) AS amount FROM transfer_reversals WHERE status = 'reversed' GROUP BY merchant_id
), ledger AS (
    SELECT substr(a.code, length('merchant_payable:') + 1) AS merchant_id, -sum(e.amount) AS balance
    FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
    WHERE a.code LIKE 'merchant\\_payable:%' GROUP BY a.code
)
SELECT m.id, e.expected, coalesce(l.balance, 0) AS actual
FROM merchants m
LEFT JOIN sales s ON s.merchant_id = m.id
LEFT JOIN paid p ON p.merchant_id = m.id
LEFT JOIN disputed d ON d.merchant_id = m.id
LEFT JOIN reversed r ON r.merchant_id = m.id
LEFT JOIN ledger l ON l.merchant_id = m.id
CROSS JOIN LATERAL (
    SELECT coalesce(s.net, 0) - coalesce(p.amount, 0) - coalesce(d.amount, 0) + coalesce(r.amount, 0) AS expected
) e
WHERE e.expected <> coalesce(l.balance, 0)
"""
