"""Cards on file: each user's Stripe Customer, and the cards saved on it (a SetupIntent or a payment
with `setup_future_usage`). The PaymentMethod id is sealed as a payment's card token is.

Revision ID: 0011_saved_cards
Revises: 0010_payout_entries
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_saved_cards"
down_revision: str | None = "0010_payout_entries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("stripe_customer_id", sa.String(length=255), unique=True))
    op.create_table(
        "saved_cards",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("user_id", sa.String(length=64), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("payment_method", sa.LargeBinary(), nullable=False),
        sa.Column("payment_method_key_id", sa.String(length=64), nullable=False),
        sa.Column("setup_intent_id", sa.String(length=255), unique=True),
        sa.Column("brand", sa.String(length=32), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("exp_month", sa.Integer(), nullable=False),
        sa.Column("exp_year", sa.Integer(), nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("status IN ('requires_action', 'active')", name="status_known"),
    )
    op.create_index("saved_cards_user_created", "saved_cards", ["user_id", "created_at", "id"])
    # At most one default card per user.
    op.create_index(
        "saved_cards_one_default", "saved_cards", ["user_id"], unique=True, postgresql_where=sa.text("is_default")
    )


def downgrade() -> None:
    op.drop_table("saved_cards")
    op.drop_column("users", "stripe_customer_id")
