"""When Stripe moved a dispute's money: the withdrawal and the reinstatement are posted when Stripe's
dispute shows their balance transactions (an inquiry moves none), no longer at creation and at a
won outcome. Disputes recorded before were withdrawn at creation and reinstated when won.

Revision ID: 0009_dispute_funds
Revises: 0008_keys_and_open_payments
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_dispute_funds"
down_revision: str | None = "0008_keys_and_open_payments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("disputes", sa.Column("withdrawn_at", sa.DateTime(timezone=True)))
    op.add_column("disputes", sa.Column("reinstated_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE disputes SET withdrawn_at = created_at")
    op.execute("UPDATE disputes SET reinstated_at = updated_at WHERE status = 'won'")


def downgrade() -> None:
    op.drop_column("disputes", "reinstated_at")
    op.drop_column("disputes", "withdrawn_at")
