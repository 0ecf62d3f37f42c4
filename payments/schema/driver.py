"""The hot path's single statements, run on asyncpg's own connection under the engine's pool.

Built with SQLAlchemy Core (the tables keep their one definition), compiled once for asyncpg, and
sent without the Session, its greenlet hop and the result's processing: a statement costs about a
third of the client's CPU it cost through an autocommitted Session (docs/capacity.md, session
25). Only for a statement that decides alone (each runs in autocommit) and whose columns need no
type processing on either side, which `Statement.of` checks once.

Errors are asyncpg's own: a constraint or a value refused is `PERMANENT` (never retried), a lost
connection is in `UNREACHABLE` (the connection is dropped from the pool, the caller retries or
answers 503)."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from asyncpg import Record
from asyncpg.exceptions import (
    DataError,
    IntegrityConstraintViolationError,
    InterfaceError,
    OperatorInterventionError,
    PostgresConnectionError,
)
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

PERMANENT = (IntegrityConstraintViolationError, DataError)
UNREACHABLE = (PostgresConnectionError, InterfaceError, OperatorInterventionError, OSError)
_DIALECT = asyncpg_dialect()


@dataclass(frozen=True)
class Statement:
    """A compiled statement: its text with $n placeholders, the parameter each stands for, and the
    values of the ones the statement itself binds (its literals)."""

    sql: str
    names: tuple[str, ...]
    literals: Mapping[str, Any]
    _rows: dict[tuple[str, ...], type] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, statement: ClauseElement) -> Statement:
        compiled = cast(SQLCompiler, statement.compile(dialect=_DIALECT))
        processed = [bind.key for bind in compiled.binds.values() if bind.type.bind_processor(_DIALECT) is not None]
        columns = statement.exported_columns  # type: ignore[attr-defined]  # a SELECT's, or a RETURNING's
        processed += [column.key for column in columns if column.type.result_processor(_DIALECT, None) is not None]
        if processed:
            raise TypeError(f"columns that need SQLAlchemy's type processing: {processed}")
        literals = {name: bind.effective_value for bind, name in compiled.bind_names.items() if not bind.required}
        return cls(str(compiled), tuple(compiled.positiontup or ()), literals)

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] if name in params else self.literals[name] for name in self.names]

    def row(self, record: Record) -> Any:
        """The record with its columns as attributes, as SQLAlchemy's rows have them."""
        keys = tuple(record.keys())
        row_type = self._rows.get(keys)
        if row_type is None:
            row_type = self._rows[keys] = namedtuple("Row", keys)  # type: ignore[misc]
        return row_type(*record.values())


async def fetch_row(
    sessions: async_sessionmaker[AsyncSession], statement: Statement, params: Mapping[str, Any]
) -> Any | None:
    """The statement's first row (None if it returns none), in a transaction of its own, on a
    connection of the pool the sessions are bound to."""
    engine: AsyncEngine = sessions.kw["bind"]
    async with engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        try:
            record = await driver.fetchrow(statement.sql, *statement.arguments(params))
        except UNREACHABLE:
            await connection.invalidate()  # never handed out again
            raise
    return None if record is None else statement.row(record)
