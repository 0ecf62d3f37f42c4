"""database.constant: our own strings written into a statement's text, and nothing else."""

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from payments.schema.database import constant


def test_a_constant_is_written_into_the_text_with_its_quote_doubled() -> None:
    sql = str(select(constant("Stripe's fee on ")).compile(dialect=postgresql.dialect()))
    assert "'Stripe''s fee on '" in sql
    assert "%(" not in sql  # no bind parameter


@pytest.mark.parametrize("value", ["x'; DROP TABLE ledger_entries; --", "{id}", "a\\'", "line\nbreak", "€"])
def test_anything_else_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="not a constant"):
        constant(value)
