"""A statement run on the driver's connection (payments/schema/driver.py) is sent with its
parameters in the order of its placeholders, its own literals included, each processed as its type
asks; a statement whose results need SQLAlchemy's processing is refused."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import BigInteger, Column, MetaData, String, Table, TypeDecorator, bindparam, select, text, update

from payments.schema.driver import Statement

_TABLE = Table("things", MetaData(), Column("id", String, primary_key=True), Column("count", BigInteger))


class _Upper(TypeDecorator[str]):
    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        return value.upper()

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return value.lower()


def test_each_placeholder_takes_its_parameter_or_the_statements_own_literal() -> None:
    statement = Statement.of(
        update(_TABLE)
        .where(_TABLE.c.id == bindparam("id"), _TABLE.c.count < 10)
        .values(count=bindparam("count"))
        .returning(_TABLE.c.id, _TABLE.c.count)
    )
    assert statement.sql.count("$") == 3
    assert statement.arguments({"id": "a", "count": 7}) == [7, "a", 10]
    with pytest.raises(KeyError):
        statement.arguments({"id": "a"})  # a parameter left out is an error, not a NULL
    with pytest.raises(KeyError, match="does not bind"):
        statement.arguments({"id": "a", "count": 7, "status": "x"})  # nor one the statement has no place for


def test_a_types_bind_processing_is_applied_as_sqlalchemy_would() -> None:
    upper = Table("shouted", MetaData(), Column("name", _Upper))
    statement = Statement.of(update(upper).values(name=bindparam("name")))
    assert statement.arguments({"name": "quiet"}) == ["QUIET"]


def test_a_column_whose_results_need_type_processing_is_refused_at_once() -> None:
    upper = Table("shouted", MetaData(), Column("name", _Upper))
    with pytest.raises(TypeError, match="type processing"):
        Statement.of(select(upper.c.name))


class _Record(dict[str, Any]):
    """What asyncpg's Record gives the driver module: its keys and values in order."""


def test_a_row_has_its_columns_as_attributes() -> None:
    statement = Statement.of(select(_TABLE.c.id, _TABLE.c.count))
    row = statement.row(_Record(id="a", count=3))  # type: ignore[arg-type]
    assert (row.id, row.count) == ("a", 3)


def test_a_text_statement_binds_its_named_parameters_in_order() -> None:
    statement = Statement.of(text("SELECT id FROM things WHERE id = ANY(:ids) AND count > :least"))
    assert statement.sql == "SELECT id FROM things WHERE id = ANY($1) AND count > $2"
    assert statement.arguments({"least": 2, "ids": ["a", "b"]}) == [["a", "b"], 2]
