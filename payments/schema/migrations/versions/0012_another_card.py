"""Another card after a decline: a declined payment stays open (`declined`) while the customer may
try another card on the same PaymentIntent, and the payment counts the cards tried.

Revision ID: 0012_another_card
Revises: 0011_saved_cards
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_another_card"
down_revision: str | None = "0011_saved_cards"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = (
    "'pending', 'requires_action', 'authorized', 'confirmed', 'partially_refunded', 'refunded', 'failed', 'canceled'"
)
OLD_OPEN = "status IN ('pending', 'requires_action', 'authorized')"
NEW_OPEN = "status IN ('pending', 'requires_action', 'authorized', 'declined')"


def _statuses(statuses: str, open_statuses: str) -> None:
    op.drop_constraint("status_known", "transactions", type_="check")
    op.create_check_constraint("status_known", "transactions", f"status IN ({statuses})")
    op.drop_index("transactions_open_created", table_name="transactions")
    op.create_index(
        "transactions_open_created", "transactions", ["status", "created_at"], postgresql_where=sa.text(open_statuses)
    )


def upgrade() -> None:
    op.add_column("transactions", sa.Column("card_attempts", sa.Integer(), server_default="1", nullable=False))
    _statuses(OLD_STATUSES + ", 'declined'", NEW_OPEN)


def downgrade() -> None:
    # A payment still declined has no status before this revision: it ends failed, as it did then.
    op.execute("UPDATE transactions SET status = 'failed' WHERE status = 'declined'")
    _statuses(OLD_STATUSES, OLD_OPEN)
    op.drop_column("transactions", "card_attempts")
