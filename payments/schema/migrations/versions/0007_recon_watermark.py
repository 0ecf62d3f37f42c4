"""Reconciliation by time of change: a scheduled run marks that its window started at the
watermark (where the last finished scheduled run ended), and our rows are paged by updated_at
(every row changed in the window; refunds and payouts not yet final by status).

Revision ID: 0007_recon_watermark
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_recon_watermark"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("transactions_updated", "transactions", ["updated_at", "id"]),
    ("refunds_updated", "refunds", ["updated_at", "id"]),
    ("refunds_status_updated", "refunds", ["status", "updated_at"]),
    ("payouts_updated", "payouts", ["updated_at", "id"]),
    ("payouts_status_updated", "payouts", ["status", "updated_at"]),
)


def upgrade() -> None:
    op.add_column(
        "reconciliation_runs",
        sa.Column("from_watermark", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_column("reconciliation_runs", "from_watermark")
