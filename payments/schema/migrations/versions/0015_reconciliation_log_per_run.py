"""A run logs a discrepancy once per subject. The slices of a run's window are checked at once, so
two of them (an object's old event in one, its new event in another) may both read the object back
and both follow Stripe; the fix is made once (it is idempotent) but was logged twice. A page retried
after its fixes logs them again too. The index makes the second log a no-op.

Earlier duplicates are dropped first: the outbox carried one event per discrepancy and run, naming
the first row, so the later rows were never announced.

Revision ID: 0015_reconciliation_log_per_run
Revises: 0014_reconciliation_seen_slice
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015_reconciliation_log_per_run"
down_revision: str | None = "0014_reconciliation_seen_slice"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "DELETE FROM reconciliation_logs later USING reconciliation_logs first "
        "WHERE later.run_id = first.run_id AND later.discrepancy = first.discrepancy "
        "AND later.subject = first.subject AND later.id > first.id"
    )
    op.create_index(
        "reconciliation_logs_run_subject",
        "reconciliation_logs",
        ["run_id", "discrepancy", "subject"],
        unique=True,
    )
    op.drop_index("ix_reconciliation_logs_run_id", table_name="reconciliation_logs")


def downgrade() -> None:
    op.create_index("ix_reconciliation_logs_run_id", "reconciliation_logs", ["run_id"])
    op.drop_index("reconciliation_logs_run_subject", table_name="reconciliation_logs")
