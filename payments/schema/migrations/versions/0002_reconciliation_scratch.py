"""Reconciliation: a subject per log row (one open discrepancy per subject), a scratch table of the
Stripe ids a run has seen, and created_at indexes for window scans.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("reconciliation_logs", sa.Column("subject", sa.String(255), server_default="", nullable=False))
    op.create_index(
        "reconciliation_logs_open_subject",
        "reconciliation_logs",
        ["discrepancy", "subject"],
        unique=True,
        postgresql_where=sa.text("resolution_status = 'needs_review'"),
    )
    # Unlogged: scratch data a crashed run simply recomputes.
    op.execute(
        "CREATE UNLOGGED TABLE reconciliation_seen ("
        " run_id varchar(64) NOT NULL, stripe_id varchar(255) NOT NULL, PRIMARY KEY (run_id, stripe_id))"
    )
    op.create_index("transactions_created", "transactions", ["created_at", "id"])
    op.create_index("refunds_created", "refunds", ["created_at", "id"])
    op.create_index("payouts_created", "payouts", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("payouts_created", "payouts")
    op.drop_index("refunds_created", "refunds")
    op.drop_index("transactions_created", "transactions")
    op.drop_table("reconciliation_seen")
    op.drop_index("reconciliation_logs_open_subject", "reconciliation_logs")
    op.drop_column("reconciliation_logs", "subject")
