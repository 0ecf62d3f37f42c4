"""Postings made by the statement that writes their row: the ledger's own rules (capture_posting,
stripe_fee_posting) called with `{column}` placeholders for the row's text and SQL expressions for
its amounts, turned into two more CTEs of that statement (its ledger transactions, then their
entries). One statement instead of a database transaction of five round trips (BEGIN, the row's
UPDATE, the ledger transactions, the entries, COMMIT): the same checks (a posting balances within
its statement), a fifth of the round trips. The amounts are SQL expressions on the row."""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import ColumnElement, func, null, select, union_all
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.sql.selectable import CTE

from payments.activities.ledger import Posting
from payments.schema.database import constant
from payments.schema.tables import LedgerAccount, LedgerEntry, LedgerTransaction

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def in_sql(template: str, columns: Any) -> ColumnElement[str]:
    """A posting's text (reference, description, account code) with its `{name}` placeholders as
    those columns (a table's or a CTE's `.c`): "capture:{id}" is 'capture:' || id."""
    parts = _PLACEHOLDER.split(template)  # text, name, text, name, ..., text
    pieces = [columns[part] if index % 2 else constant(part) for index, part in enumerate(parts) if part]
    return functools.reduce(operator.add, pieces)


def accounts_exist(codes: Iterable[str], columns: Any) -> ColumnElement[bool]:
    """Whether every account of these codes exists (a statement posting to them updates its row only
    then; its caller posts the first time, when an account is created, in a transaction)."""
    wanted = [in_sql(code, columns) for code in sorted(set(codes))]
    present = select(func.count()).select_from(LedgerAccount).where(LedgerAccount.code.in_(wanted))
    return present.scalar_subquery() == len(wanted)


def posted_in_statement(row: CTE, postings: list[Posting]) -> tuple[CTE, CTE]:
    """The ledger transactions and entries of `postings` for the row of the CTE `row`, whose columns
    fill the placeholders. A reference posted already posts nothing again (a retried activity);
    entries of 0 are left out, as post_all leaves them out. An entry whose account is missing is
    refused (its account id is NULL), never left out."""
    columns = row.c
    transactions = _union(
        select(
            in_sql(p.reference, columns).label("reference"), in_sql(p.description, columns) if p.description else null()
        ).select_from(row)
        for p in postings
    )
    posted = (
        insert(LedgerTransaction)
        .from_select(["reference", "description"], transactions)
        .on_conflict_do_nothing(index_elements=["reference"])
        .returning(LedgerTransaction.id, LedgerTransaction.reference)
        .cte("posted")
    )
    entries = _union(
        select(
            in_sql(p.reference, columns).label("reference"),
            in_sql(code, columns).label("code"),
            cast(ColumnElement[int], amount).label("amount"),  # an expression on the row, typed int by Posting
            in_sql(p.currency, columns).label("currency"),
        ).select_from(row)
        for p in postings
        for code, amount in p.entries.items()
    ).subquery("entry")
    account = LedgerAccount.__table__
    inserted = (
        insert(LedgerEntry)
        .from_select(
            ["ledger_transaction_id", "account_id", "amount", "currency"],
            select(posted.c.id, account.c.id, entries.c.amount, entries.c.currency)
            .select_from(entries)
            .join(posted, posted.c.reference == entries.c.reference)
            .outerjoin(account, account.c.code == entries.c.code)
            .where(entries.c.amount != 0),
        )
        .cte("entries")
    )
    return posted, inserted


def _union(selects: Iterable[Any]) -> Any:
    selects = list(selects)
    return selects[0] if len(selects) == 1 else union_all(*selects)
