"""Reconciliation: our books against Stripe by time of change, a page at a time (memory bounded
by the page size).

The Stripe side reads the Events API since the run's window start (the watermark) and compares
each object that changed with our row named in its metadata (a dispute: by its Stripe id); our
side pages every row not yet final, whatever its age, and every row changed in the window that no
event of this run showed, and reads its Stripe object back; the ledger phase checks the
invariants. Safe fixes go through the saga's own activities (one code path posts money); the rest
is logged `needs_review`, once per discrepancy and subject however many runs see it."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, any_, bindparam, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from payments.activities import reconciliation_slices as slices
from payments.activities.heartbeat import heartbeating
from payments.activities.payment_records import PaymentRecords
from payments.activities.payout_records import PayoutRecords
from payments.activities.reconciliation_gone import LostWorkflows
from payments.activities.reconciliation_ledger import ledger_findings
from payments.activities.reconciliation_log import Logbook
from payments.activities.reconciliation_payments import PaymentChecks
from payments.activities.reconciliation_rules import (
    AGREEMENT_COLUMNS,
    CHANGE_TYPES,
    LISTS,
    NOT_FINAL,
    Events,
    Obj,
    agrees,
    latest_changes,
    meta,
    settling,
)
from payments.activities.reconciliation_settlement import SettlementChecks
from payments.activities.reconciliation_slices import Slice
from payments.activities.refund_records import RefundRecords
from payments.activities.stripe_payments import StripePayments
from payments.activities.stripe_reads import StripeReads
from payments.schema.database import autocommitted
from payments.schema.driver import Statement, fetch_rows
from payments.schema.messages import (
    PayoutTransfer,
    ReconciliationPage,
    ReconciliationPageResult,
    StripeRefund,
)
from payments.schema.tables import (
    CAPTURED_PAYMENT_STATUSES,
    OPEN_PAYMENT_STATUSES,
    Dispute,
    Payout,
    ReconciliationSeen,
    Refund,
    Transaction,
)

# Phases of runs started before reconciliation read changes: the first is the changes phase
# now, the other listings are covered by it (a run in flight at the upgrade finishes).
LEGACY_STRIPE_PHASES = ("payment_intents", "refunds", "transfers", "disputes")
RETRIEVALS = 8  # Stripe objects read back at once while our rows are paged
# A page's ids as one array parameter: a multi-row INSERT built by SQLAlchemy is compiled anew for
# every page (its number of rows varies), which cost more than the rest of checking the page. The
# ids go in sorted: two slices marking the same ids at once lock them in one order, never deadlock.
_SEEN = Statement.of(
    text(
        "SELECT stripe_id FROM reconciliation_seen WHERE run_id = :run_id AND stripe_id = ANY(:ids) AND slice >= :slice"
    )
)
_MARK_SEEN = Statement.of(
    text(
        "INSERT INTO reconciliation_seen (run_id, stripe_id, slice) "
        "SELECT :run_id, id, :slice FROM unnest(CAST(:ids AS text[])) AS id ORDER BY id "
        "ON CONFLICT (run_id, stripe_id) DO UPDATE SET slice = greatest(reconciliation_seen.slice, excluded.slice)"
    )
)
# The seen set grows by a whole window before our rows are paged against it. With the statistics
# of an empty table, or of the last run's set (other run ids), the planner takes this run's set
# for one row and rescans it for each of ours: at 100,000 payments, minutes a page. Analyzed at the
# start of each of our phases, a few ms.
_ANALYZE_SEEN = text("ANALYZE reconciliation_seen")
# Our row each kind of Stripe object names, by this column; a page's rows read by their keys, with
# only the columns that tell agreement (no card token, no timestamps to decode).
OUR_KEY = {
    "payment_intent": Transaction.id,
    "refund": Refund.id,
    "transfer": Payout.id,
    "dispute": Dispute.stripe_dispute_id,
}
_PLAIN_ROWS = {
    kind: Statement.of(
        select(column, *(column.table.c[name] for name in AGREEMENT_COLUMNS[kind])).where(
            column == any_(bindparam("ids"))
        )
    )
    for kind, column in OUR_KEY.items()
}


@dataclass(frozen=True)
class Tuning:
    margin: timedelta
    stuck_after: timedelta
    page_size: int
    pages_per_activity: int
    payout_hold: timedelta = timedelta(0)  # when a capture is due in a payout (the settlement phase)
    slices: int = 1  # of the window, read at once (reconciliation_slices)


def _ts(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _stripe_object_of(row: Transaction | Refund | Payout) -> tuple[str, str | None]:
    """The Stripe kind and id of the object our row names."""
    if isinstance(row, Refund):
        return "refund", row.stripe_refund_id
    if isinstance(row, Payout):
        return "transfer", row.stripe_transfer_id
    return "payment_intent", row.stripe_payment_intent_id


class Reconciler:
    """`sessions` plan each statement for its values (the seen set's statements: their generic
    plan, made while the set was small, scans all of it); `lookups` keep a generic plan, for the
    page statements that read our rows by key, whose plan never changes (planning them on every
    page was a sixth of PostgreSQL's CPU over a run)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        reads: StripeReads,
        lost: LostWorkflows,
        tuning: Tuning,
        steps: tuple[PaymentRecords, RefundRecords, PayoutRecords, StripePayments],
        lookups: async_sessionmaker[AsyncSession],
    ) -> None:
        self._sessions, self._lookups = sessions, lookups
        self._reads = reads
        self._get, self._retrieve = reads.get, reads.retrieve
        self._tuning = tuning
        payments, self._refunds, self._payouts, stripe_payments = steps
        self._logbook = Logbook(sessions)
        self._settlement = SettlementChecks(
            sessions,
            lookups,
            reads.get,
            reads.retrieve,
            self._logbook,
            tuning.margin,
            tuning.page_size,
            tuning.payout_hold,
            tuning.pages_per_activity,
            tuning.slices,
        )
        self._lost = lost
        self._payment_checks = PaymentChecks(
            lost, tuning.margin, tuning.stuck_after, (payments, stripe_payments), self._logbook
        )

    @activity.defn
    async def reconcile_page(self, page: ReconciliationPage) -> ReconciliationPageResult:
        """Heartbeating: a page waits on the read budget as well as on Stripe and PostgreSQL; a
        worker that dies mid-page is noticed in seconds, and a page cut off is cancelled, not left
        running beside its retry. A page of some of the window's slices reads Stripe within their
        share of the run's budget."""
        _, named = slices.named_in(page.cursor)  # the slices of the window this page reads, if it names them
        with self._reads.share(len(named) / self._tuning.slices if named else 1):
            return await heartbeating(self._page(page))

    async def _page(self, page: ReconciliationPage) -> ReconciliationPageResult:
        counts: Counter[str] = Counter()
        if page.phase in LEGACY_STRIPE_PHASES[1:]:
            cursor = None
        elif page.phase in ("stripe_changes", LEGACY_STRIPE_PHASES[0]):
            cursor = await self._stripe_changes(page, counts)
        elif page.phase == "settlement":
            start, end = _ts(page.window_start), _ts(page.window_end)
            cursor = await self._settlement.page(page.run_id, start, end, page.cursor, counts)
        elif page.phase == "ledger":
            await self._ledger(page.run_id, counts)
            cursor = None
        else:
            cursor = await self._our_page(page, counts)
        return ReconciliationPageResult(cursor, dict(counts))

    # --- Stripe's side: what changed since the window's start ---

    async def _stripe_changes(self, page: ReconciliationPage, counts: Counter[str]) -> str | None:
        """Up to `pages_per_activity` pages of Stripe's events in each slice of the window, the
        slices at once; returns where the next activity starts (None: every slice is read)."""

        async def check(part: Slice, events: list[Obj]) -> None:
            counts["events"] += len(events)
            await self._check_changes(page.run_id, part.index, latest_changes(events), counts)

        left = await slices.read(self._change_slices(page), self._events, check, self._tuning.pages_per_activity)
        return slices.to_cursor(left)

    def _change_slices(self, page: ReconciliationPage) -> list[Slice]:
        """The slices the cursor names; at the start, the window and its margin cut in slices. A
        cursor of one event id is a run started before slices, mid-list: it goes on as one slice."""
        if slices.is_cursor(page.cursor):
            return slices.from_cursor(page.cursor)
        gte, lt = slices.window(_ts(page.window_start), _ts(page.window_end), self._tuning.margin)
        if page.cursor and page.cursor.startswith("evt_"):
            return [Slice(0, gte, lt, page.cursor)]
        return slices.split(gte, lt, self._tuning.slices)

    async def _events(self, part: Slice) -> Events:
        """One page of the Events API, read raw (plain JSON: a page of 100 StripeObjects costs more
        to build than everything else here), each event's object as a `Snapshot`."""
        params: dict[str, Any] = {
            "limit": self._tuning.page_size,
            "types": CHANGE_TYPES,
            "created": {"gte": part.gte, "lt": part.lt},
        }
        if part.after:
            params["starting_after"] = part.after
        return await self._get("/v1/events", Events, **params)

    async def _check_changes(
        self, run_id: str, part: int, changes: list[tuple[str, Obj]], counts: Counter[str]
    ) -> None:
        """Each changed object not checked yet by this slice or a later one, kind by kind. Events
        come newest first, so the first one a slice sees is the object's latest state in it; an
        earlier slice's check saw an older state, so it does not count here."""
        params = {"run_id": run_id, "ids": [obj["id"] for _, obj in changes], "slice": part}
        seen = {row.stripe_id for row in await fetch_rows(self._sessions, _SEEN, params)}
        for kind in LISTS:
            objects = [obj for k, obj in changes if k == kind and obj["id"] not in seen]
            await self._check(run_id, part, kind, objects, counts)

    async def _check(self, run_id: str, part: int, kind: str, objects: list[Obj], counts: Counter[str]) -> None:
        """Each object against our row named in it (read in one query), then marked seen. An
        event's snapshot that agrees with a final row is done; any other is read back first, so
        a fix follows Stripe as it is now (and the row it names now)."""
        compare: Any
        column: Any = OUR_KEY[kind]
        ours_of, compare = {
            "payment_intent": (lambda o: meta(o, "tx_id"), self._payment_checks.compare),
            "refund": (lambda o: meta(o, "refund_id"), self._refund),
            "transfer": (lambda o: meta(o, "payout_id"), self._transfer),
            "dispute": (lambda o: o["id"], self._dispute),
        }[kind]

        def ids_named(named: list[Obj]) -> list[str]:
            return [i for i in (ours_of(o) for o in named) if i]

        if not objects:
            return
        # Plain rows of the table first, enough to tell agreement at a fraction of an ORM object's
        # cost; ORM objects (to compare and fix) only for the objects that differ.
        rows = await fetch_rows(self._lookups, _PLAIN_ROWS[kind], {"ids": ids_named(objects)})
        plain = {getattr(row, column.key): row for row in rows}
        differing = [o for o in objects if not agrees(kind, o, plain.get(ours_of(o) or ""))]
        counts["checked"] += len(objects) - len(differing)
        # One gone at Stripe is left to our side of this run, which finds its row.
        now = [o for o in await self._read_back([(kind, o["id"]) for o in differing]) if o is not None]
        ours: dict[str, Any] = {}
        if now:
            async with autocommitted(self._sessions) as session:
                found = await session.scalars(select(column.class_).where(column.in_(ids_named(now))))
                ours = {getattr(row, column.key): row for row in found}
        for obj in now:
            counts["checked"] += 1
            await compare(run_id, obj, ours.get(ours_of(obj) or ""), counts)
        await fetch_rows(
            self._sessions, _MARK_SEEN, {"run_id": run_id, "ids": [o["id"] for o in objects], "slice": part}
        )

    async def _read_back(self, wanted: list[tuple[str, str | None]]) -> list[Obj | None]:
        """Stripe objects (kind, id) as they are now, a few reads at once; None where Stripe has none."""
        slots = asyncio.Semaphore(RETRIEVALS)

        async def read(kind: str, stripe_id: str | None) -> Obj | None:
            async with slots:
                return await self._retrieve(kind, stripe_id)

        return list(await asyncio.gather(*(read(*w) for w in wanted)))

    async def _refund(self, run_id: str, refund: Obj, ours: Refund | None, counts: Counter[str]) -> None:
        failed_at_stripe = refund["status"] in ("failed", "canceled")
        if ours is None:
            details = {"amount": refund["amount"], "payment_intent": refund["payment_intent"]}
            await self._logbook.log(run_id, counts, "stripe_refund_without_record", refund["id"], details)
        elif ours.amount != refund["amount"]:
            details = {"ours": ours.amount, "stripe": refund["amount"]}
            await self._logbook.log(run_id, counts, "refund_amount_mismatch", refund["id"], details, refund_id=ours.id)
        elif ours.status == "pending" and refund["status"] == "succeeded" and await self._behind(ours):
            await self._refunds.record_refund(StripeRefund(ours.id, refund["id"]))
            details = {"was": ours.status}
            await self._logbook.log(
                run_id, counts, "refund_behind_stripe", refund["id"], details, refund_id=ours.id, fixed=True
            )
        elif failed_at_stripe and ours.status != "failed":  # record_refund follows each change once
            # Returned by the card network, before or after it succeeded: what was posted is reversed.
            await self._refunds.record_refund(
                StripeRefund(ours.id, refund["id"], refund["status"], refund.get("failure_reason"))
            )
            discrepancy = "refund_failed_at_stripe" if ours.status == "succeeded" else "refund_failed_behind_stripe"
            details = {"was": ours.status, "stripe": refund["status"], "failure_reason": refund.get("failure_reason")}
            await self._logbook.log(run_id, counts, discrepancy, refund["id"], details, refund_id=ours.id, fixed=True)

    async def _transfer(self, run_id: str, transfer: Obj, ours: Payout | None, counts: Counter[str]) -> None:
        if ours is None:
            details = {"amount": transfer["amount"], "destination": transfer["destination"]}
            await self._logbook.log(run_id, counts, "stripe_transfer_without_payout", transfer["id"], details)
        elif ours.stripe_transfer_id not in (None, transfer["id"]):
            details = {"ours": ours.stripe_transfer_id, "amount": transfer["amount"]}
            await self._logbook.log(run_id, counts, "second_transfer", transfer["id"], details, payout_id=ours.id)
        elif ours.amount != transfer["amount"]:
            details = {"ours": ours.amount, "stripe": transfer["amount"]}
            await self._logbook.log(
                run_id, counts, "payout_amount_mismatch", transfer["id"], details, payout_id=ours.id
            )
        elif ours.status == "in_transit" and await self._behind(ours):
            await self._payouts.record_payout_paid(PayoutTransfer(ours.id, transfer["id"]))
            await self._logbook.log(
                run_id, counts, "payout_behind_stripe", transfer["id"], {}, payout_id=ours.id, fixed=True
            )
        elif ours.status == "failed":
            details = {"ours": ours.status, "transfer": transfer["id"]}
            await self._logbook.log(
                run_id, counts, "failed_payout_transferred", transfer["id"], details, payout_id=ours.id
            )

    async def _behind(self, row: Refund | Payout) -> bool:
        """Behind Stripe for longer than its saga's own write takes, or with no saga left to write it."""
        if not settling(row, self._tuning.margin):
            return True
        return await (self._lost.refund_gone(row) if isinstance(row, Refund) else self._lost.payout_gone(row))

    async def _dispute(self, run_id: str, dispute: Obj, ours: Dispute | None, counts: Counter[str]) -> None:
        """A dispute we never heard of (its webhooks lost), or one whose amount or status differs
        from Stripe's for longer than its workflow takes to follow (the read-back)."""
        stripe_side = {
            "stripe": dispute["amount"],
            "status": dispute["status"],
            "payment_intent": dispute["payment_intent"],
        }
        if ours is None:
            await self._logbook.log(run_id, counts, "stripe_dispute_without_record", dispute["id"], stripe_side)
        elif ours.amount != dispute["amount"]:
            details = stripe_side | {"ours": ours.amount, "dispute_id": ours.id}
            await self._logbook.log(run_id, counts, "dispute_amount_mismatch", dispute["id"], details, tx_id=ours.tx_id)
        elif ours.status != dispute["status"] and ours.updated_at < datetime.now(UTC) - self._tuning.stuck_after:
            details = stripe_side | {"ours": ours.status, "dispute_id": ours.id}
            await self._logbook.log(run_id, counts, "dispute_status_mismatch", dispute["id"], details, tx_id=ours.tx_id)

    # --- our side: rows not final, and rows changed in the window, that no event showed ---

    async def _our_page(self, page: ReconciliationPage, counts: Counter[str]) -> str | None:
        """Two passes, each in (updated_at, id) order: the rows not final that were last changed
        before the window (`open|…`), then every row changed in it (`changed|…`)."""
        table: Any
        table, stripe_id = {
            "our_transactions": (Transaction, Transaction.stripe_payment_intent_id),
            "our_refunds": (Refund, Refund.stripe_refund_id),
            "our_payouts": (Payout, Payout.stripe_transfer_id),
        }[page.phase]
        since = _ts(page.window_start) - self._tuning.margin
        passes = {
            "open": and_(table.status.in_(NOT_FINAL[table]), table.updated_at < since),
            "changed": and_(table.updated_at >= since, table.updated_at < _ts(page.window_end)),
        }
        part, *after = (page.cursor or "open").split("|")
        if part not in passes or len(after) not in (0, 2):  # a cursor of a run started before the passes
            part, after = "open", []
        seen = select(ReconciliationSeen.stripe_id).where(
            ReconciliationSeen.run_id == page.run_id, ReconciliationSeen.stripe_id == stripe_id
        )
        query = select(table).where(passes[part], ~seen.exists())
        if after:
            query = query.where(tuple_(table.updated_at, table.id) > tuple_(_ts(after[0]), after[1]))
        if page.cursor is None:  # the seen set has just grown by a window of Stripe's changes
            async with self._sessions.begin() as session:  # committed: a rolled-back ANALYZE is undone
                await session.execute(_ANALYZE_SEEN)
        async with autocommitted(self._sessions) as session:
            rows = list(
                (
                    await session.execute(query.order_by(table.updated_at, table.id).limit(self._tuning.page_size))
                ).scalars()
            )
        await self._compare_rows(page.run_id, rows, counts)
        if len(rows) == self._tuning.page_size:
            return f"{part}|{rows[-1].updated_at.isoformat()}|{rows[-1].id}"
        return "changed" if part == "open" else None

    async def _compare_rows(self, run_id: str, rows: list[Any], counts: Counter[str]) -> None:
        """Each row against its Stripe object read back now."""
        objects = await self._read_back([_stripe_object_of(row) for row in rows])
        for row, obj in zip(rows, objects, strict=True):
            counts["checked"] += 1
            if obj is None:
                await self._missing_at_stripe(run_id, row, counts)
            elif isinstance(row, Transaction):
                await self._payment_checks.compare(run_id, obj, row, counts)
            elif isinstance(row, Refund):
                await self._refund(run_id, obj, row, counts)
            else:
                await self._transfer(run_id, obj, row, counts)

    async def _missing_at_stripe(self, run_id: str, row: Transaction | Refund | Payout, counts: Counter[str]) -> None:
        """No Stripe object for the row: a payment nothing will finish is settled; money we
        recorded as moved is flagged."""
        amount = {"amount": row.amount}
        if isinstance(row, Transaction) and row.status in OPEN_PAYMENT_STATUSES:
            if await self._payment_checks.stuck(row):
                await self._payment_checks.settle_stuck(run_id, row, None, counts)
        elif isinstance(row, Transaction) and row.status in CAPTURED_PAYMENT_STATUSES:
            details = {"ours": row.status, "payment_intent": row.stripe_payment_intent_id}
            await self._logbook.log(run_id, counts, "confirmed_but_missing_at_stripe", row.id, details, tx_id=row.id)
        elif isinstance(row, Refund) and row.status == "succeeded":
            await self._logbook.log(run_id, counts, "refund_missing_at_stripe", row.id, amount, refund_id=row.id)
        elif isinstance(row, Payout) and row.status == "paid":
            await self._logbook.log(run_id, counts, "payout_missing_at_stripe", row.id, amount, payout_id=row.id)
        elif isinstance(row, Refund) and row.status == "pending" and await self._lost.refund_gone(row):
            await self._lost.restart_refund(row)  # accepted, never made at Stripe: made now, once
            await self._logbook.log(
                run_id, counts, "refund_workflow_lost", row.id, amount, fixed=True, refund_id=row.id
            )
        elif isinstance(row, Payout) and row.status == "in_transit" and await self._lost.payout_gone(row):
            await self._lost.restart_payout(row)  # reserved, never transferred: transferred now, once
            await self._logbook.log(
                run_id, counts, "payout_workflow_lost", row.id, amount, fixed=True, payout_id=row.id
            )

    # --- the ledger ---

    async def _ledger(self, run_id: str, counts: Counter[str]) -> None:
        async with autocommitted(self._sessions) as session:
            findings = await ledger_findings(session)
        for discrepancy, subject, details in findings:
            await self._logbook.log(run_id, counts, discrepancy, subject, details)
