"""The books: a payout's statement (every entry it settled, totals summing to its amount), a
merchant's monthly statement, and the platform's month-end report; JSON, or CSV with
`Accept: text/csv` or `?format=csv`."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from payments.api.access import operator_only, own_merchant
from payments.api.contract import errors
from payments.api.deps import CurrentPrincipal, Session
from payments.api.errors import NotFound
from payments.api.models import (
    MonthEndFigures,
    MonthEndReport,
    MonthlyStatementOut,
    PayoutStatementOut,
    StatementKindTotal,
    StatementLineOut,
    StatementTotalsOut,
    payout_out,
)
from payments.api.pagination import InvalidCursor, Limit, decode_cursor, encode_cursor, int_row_id
from payments.schema import statements
from payments.schema.tables import Payout

router = APIRouter(tags=["statements"])
MONTH = r"^(19[7-9]\d|2\d{3})-(0[1-9]|1[0-2])$"  # 1970-01 to 2999-12: a month the books can hold
Month = Annotated[str, Path(pattern=MONTH, examples=["2026-11"])]
Format = Annotated[Literal["json", "csv"] | None, Query(description="csv: the same as `Accept: text/csv`")]
CSV_PAGE = 1000  # lines read at once while a CSV is written
CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "JSON, or CSV when asked for"}
}
LINE_FIELDS = ("created_at", "kind", "reference", "tx_id", "amount", "fee", "net")


def _wants_csv(request: Request, format_: str | None) -> bool:
    return format_ == "csv" or (format_ is None and "text/csv" in request.headers.get("accept", ""))


def _csv(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _line_out(line: statements.StatementLine) -> StatementLineOut:
    return StatementLineOut(
        kind=line.kind,
        reference=line.reference,
        tx_id=line.tx_id,
        created_at=line.created_at,
        amount=line.amount,
        fee=line.fee,
        net=line.net,
    )


async def _all_lines(session: Session, payout_id: str) -> list[statements.StatementLine]:
    lines: list[statements.StatementLine] = []
    while True:
        page = await statements.payout_lines(session, payout_id, lines[-1].entry_id if lines else 0, CSV_PAGE)
        lines += page
        if len(page) < CSV_PAGE:
            return lines


@router.get(
    "/payouts/{payout_id}/statement",
    summary="A payout's statement: what it settled (merchant: self, operator)",
    response_model=PayoutStatementOut,
    responses=CSV | errors(NotFound, InvalidCursor),
)
async def payout_statement(
    payout_id: str,
    request: Request,
    principal: CurrentPrincipal,
    session: Session,
    limit: Limit = 100,
    cursor: str | None = None,
    format: Format = None,
) -> PayoutStatementOut | Response:
    """Every payment, refund, dispute and reversal the payout settled, oldest first, with the fee in
    each; the totals (by kind, and `carried_over`) sum to the payout's amount. CSV: every line, then
    the carried-over amount and the payout, so the `net` column sums to the payout."""
    payout = await session.get(Payout, payout_id)
    if payout is None:
        raise NotFound()
    await own_merchant(session, principal, payout.merchant_id)
    totals = await statements.payout_totals(session, payout.id, payout.amount)
    if _wants_csv(request, format):
        rows: list[Sequence[Any]] = [
            (ln.created_at.isoformat(), ln.kind, ln.reference, ln.tx_id or "", ln.amount, ln.fee, ln.net)
            for ln in await _all_lines(session, payout.id)
        ]
        rows += [
            ("", "carried_over", "", "", "", "", totals.carried_over),
            ("", "payout", payout.id, "", "", "", payout.amount),
        ]
        return _csv(f"statement-{payout.id}.csv", LINE_FIELDS, rows)
    after = int_row_id(decode_cursor(cursor)[1]) if cursor else 0
    lines = await statements.payout_lines(session, payout.id, after, limit + 1)
    next_cursor = (
        encode_cursor(lines[limit - 1].created_at, str(lines[limit - 1].entry_id)) if len(lines) > limit else None
    )
    return PayoutStatementOut(
        payout=payout_out(payout),
        totals=StatementTotalsOut(
            by_kind={k: StatementKindTotal(**vars(v)) for k, v in totals.by_kind.items()},
            net=totals.net,
            carried_over=totals.carried_over,
            payout=totals.payout,
        ),
        data=[_line_out(line) for line in lines[:limit]],
        next_cursor=next_cursor,
    )


@router.get(
    "/merchants/{merchant_id}/statements/{month}",
    summary="A merchant's month: opening balance, movements by kind, closing (merchant: self, operator)",
    response_model=MonthlyStatementOut,
    responses=CSV | errors(NotFound),
)
async def monthly_statement(
    merchant_id: str,
    month: Month,
    request: Request,
    principal: CurrentPrincipal,
    session: Session,
    format: Format = None,
) -> MonthlyStatementOut | Response:
    """What the platform owed the merchant as the month (UTC) opened, each kind of movement in it
    (payouts reserved as `payout`), and what it owed as the month closed."""
    merchant = await own_merchant(session, principal, merchant_id)
    month_ = await statements.merchant_month(session, merchant.id, merchant.currency, month)
    if _wants_csv(request, format):
        rows: list[tuple[str, int | str, int]] = [("opening_balance", "", month_.opening_balance)]
        rows += [(kind, m["count"], m["amount"]) for kind, m in month_.movements.items()]
        rows += [("closing_balance", "", month_.closing_balance)]
        return _csv(f"statement-{merchant.id}-{month}.csv", ("line", "count", "amount"), rows)
    return MonthlyStatementOut(
        merchant_id=month_.merchant_id,
        month=month_.month,
        currency=month_.currency,
        opening_balance=month_.opening_balance,
        movements={
            kind: StatementKindTotal(count=m["count"], amount=m["amount"], fee=0, net=m["amount"])
            for kind, m in month_.movements.items()
        },
        closing_balance=month_.closing_balance,
    )


@router.get(
    "/reports/month-end",
    summary="The platform's month-end report, by currency (operator)",
    response_model=MonthEndReport,
    responses=CSV | errors(),
)
async def month_end_report(
    month: Annotated[str, Query(pattern=MONTH, examples=["2026-11"])],
    request: Request,
    principal: CurrentPrincipal,
    session: Session,
    format: Format = None,
) -> MonthEndReport | Response:
    """Gross volume, refunds, disputes, our fees, Stripe's fees, net revenue, paid out and owed to
    merchants at the month's end (UTC), from the ledger."""
    operator_only(principal)
    figures = await statements.month_end(session, month)
    if _wants_csv(request, format):
        rows = [[f[name] for name in statements.REPORT_FIELDS] for f in figures]
        return _csv(f"month-end-{month}.csv", statements.REPORT_FIELDS, rows)
    return MonthEndReport(month=month, data=[MonthEndFigures(**f) for f in figures])
