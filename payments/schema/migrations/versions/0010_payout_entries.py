"""Which ledger entries each payout settles: the merchant-payable entries (payments, refunds,
disputes, reversals) a payout pays out, so its statement lists them and reconciliation can match a
transfer to what it settles. Entries posted before this migration were settled before statements
were kept (payout_id NULL): no statement lists them.

Revision ID: 0010_payout_entries
Revises: 0009_dispute_funds
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_payout_entries"
down_revision: str | None = "0009_dispute_funds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payout_entries",
        # No foreign key to ledger_entries: entries are never deleted (a trigger refuses it), and a
        # reference to them would change how PostgreSQL refuses a TRUNCATE of the ledger.
        sa.Column("ledger_entry_id", sa.BigInteger(), primary_key=True),
        sa.Column("payout_id", sa.String(64), sa.ForeignKey("payouts.id")),
    )
    op.create_index("payout_entries_payout", "payout_entries", ["payout_id"])
    op.execute("""
        INSERT INTO payout_entries (ledger_entry_id, payout_id)
        SELECT e.id, NULL FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
        WHERE a.code LIKE 'merchant\\_payable:%'
    """)


def downgrade() -> None:
    op.drop_table("payout_entries")
