"""A payout remembers the parameters its key was first used with (a repeat with others is refused),
and the payments not yet final are indexed by creation time, so that the worker's "oldest open
payment" gauge is one index descent per status, however many payments there are.

Revision ID: 0008_keys_and_open_payments
Revises: 0007_recon_watermark
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_keys_and_open_payments"
down_revision: str | None = "0007_recon_watermark"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('pending', 'requires_action', 'authorized')"


def upgrade() -> None:
    op.add_column("payouts", sa.Column("request_fingerprint", sa.String(64), nullable=True))
    op.create_index(
        "transactions_open_created", "transactions", ["status", "created_at"], postgresql_where=sa.text(OPEN)
    )


def downgrade() -> None:
    op.drop_index("transactions_open_created", table_name="transactions")
    op.drop_column("payouts", "request_fingerprint")
