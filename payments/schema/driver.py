"""The hot path's single statements (and reconciliation's, a page of them at a time), run on
asyncpg's own connection under the engine's pool.

Built with SQLAlchemy Core (the tables keep their one definition), compiled once for asyncpg, and
sent without the Session and SQLAlchemy's statement execution and result handling: a statement
costs about a third of the client's CPU it cost through an autocommitted Session (docs/capacity.md,
session 25). Only for a statement that decides alone (each runs in autocommit) and whose columns
need no result processing, which `Statement.of` checks once.

What goes wrong is raised as SQLAlchemy raises it through a Session, so that every caller keeps one
vocabulary: a constraint refused is an `IntegrityError` (a permanent activity failure), a lost
connection an `OperationalError` with `connection_invalidated` (503 in the API, retried in the
worker), any other refusal a `DBAPIError`."""

from __future__ import annotations

import asyncio
from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from asyncpg import Record
from asyncpg.exceptions import (
    AdminShutdownError,
    CannotConnectNowError,
    CrashShutdownError,
    IntegrityConstraintViolationError,
    PostgresConnectionError,
)
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

# The server or the way to it is gone (a restart, a terminated backend, a network cut).
_LOST = (PostgresConnectionError, CannotConnectNowError, AdminShutdownError, CrashShutdownError, OSError)
_DIALECT = PGDialect_asyncpg(dbapi=PGDialect_asyncpg.import_dbapi())  # as the engine's, with its processors


@dataclass(frozen=True)
class Statement:
    """A compiled statement: its text with $n placeholders, the parameter each stands for with the
    type's bind processing if it has any, and the values the statement binds itself (its literals)."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    literals: Mapping[str, Any]
    _rows: dict[tuple[str, ...], type] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, statement: ClauseElement) -> Statement:
        compiled = cast(SQLCompiler, statement.compile(dialect=_DIALECT))
        # A SELECT's columns, or a RETURNING's; a text() statement's are untyped, never processed.
        columns = getattr(statement, "exported_columns", ())
        processed = [c.key for c in columns if c.type.dialect_impl(_DIALECT).result_processor(_DIALECT, None)]
        if processed:
            raise TypeError(f"columns that need SQLAlchemy's type processing: {processed}")
        names = tuple(compiled.positiontup or ())
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        processors = tuple(binds[name].type.dialect_impl(_DIALECT).bind_processor(_DIALECT) for name in names)
        literals = {name: bind.effective_value for name, bind in binds.items() if not bind.required}
        return cls(str(compiled), names, processors, literals)

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        """The values in the placeholders' order; a parameter the statement does not bind is an error."""
        if unknown := params.keys() - set(self.names):
            raise KeyError(f"parameters the statement does not bind: {sorted(unknown)}")
        arguments = []
        for name, process in zip(self.names, self.processors, strict=True):
            value = params[name] if name in params else self.literals[name]
            arguments.append(value if process is None else process(value))
        return arguments

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
    record = await _run(sessions, statement, params, first=True)
    return None if record is None else statement.row(record)


async def fetch_rows(
    sessions: async_sessionmaker[AsyncSession], statement: Statement, params: Mapping[str, Any]
) -> list[Any]:
    """Every row the statement returns (none for a write without RETURNING), as `fetch_row`'s."""
    return [statement.row(record) for record in await _run(sessions, statement, params, first=False)]


async def _run(
    sessions: async_sessionmaker[AsyncSession], statement: Statement, params: Mapping[str, Any], first: bool
) -> Any:
    engine: AsyncEngine = sessions.kw["bind"]
    async with engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        arguments = statement.arguments(params)
        try:
            if first:
                return await driver.fetchrow(statement.sql, *arguments)
            return await driver.fetch(statement.sql, *arguments)
        except BaseException as exc:
            # Lost, or left mid-statement by a cancellation (an activity's timeout): never handed
            # out again. One that refused the statement is as good as before.
            lost = driver.is_closed() or isinstance(exc, _LOST)
            if lost or not isinstance(exc, Exception):
                await asyncio.shield(connection.invalidate())
            if isinstance(exc, IntegrityConstraintViolationError):
                raise IntegrityError(statement.sql, None, exc, hide_parameters=True) from exc
            if lost:
                raise OperationalError(
                    statement.sql, None, exc, hide_parameters=True, connection_invalidated=True
                ) from exc
            if isinstance(exc, Exception):
                raise DBAPIError(statement.sql, None, exc, hide_parameters=True) from exc
            raise
