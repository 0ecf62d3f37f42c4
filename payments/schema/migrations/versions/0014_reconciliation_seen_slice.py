"""Which slice of a run's window saw each Stripe id: a run reads Stripe's changes as several slices
of the window at once, and a slice may skip an object only when it, or a newer slice, has checked
it (a newer slice holds a later state; an older one does not).

Revision ID: 0014_reconciliation_seen_slice
Revises: 0013_ledger_checks_per_statement
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_reconciliation_seen_slice"
down_revision: str | None = "0013_ledger_checks_per_statement"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("reconciliation_seen", sa.Column("slice", sa.SmallInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("reconciliation_seen", "slice")
