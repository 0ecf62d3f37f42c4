"""Each merchant's payable balance kept as it is posted, so that a payout or a refund reads one
row instead of summing every entry the merchant ever had (a payout's reserve, holding the
merchant's lock, grew slower with each capture); entries are indexed by time for the hold window.

Only merchant payables keep a running balance: the shared accounts (Stripe clearing, platform
revenue, payouts in transit) take a leg of nearly every posting, and one row for each would make
every capture on the platform wait for the one before it to commit.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# In the posting's own transaction: a reader sees the entries and the balance together or neither.
KEEP_PAYABLE_BALANCE = """
CREATE FUNCTION ledger_keep_payable_balance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM ledger_accounts WHERE id = NEW.account_id AND code LIKE 'merchant_payable:%') THEN
        INSERT INTO payable_balances (account_id, currency, balance) VALUES (NEW.account_id, NEW.currency, NEW.amount)
        ON CONFLICT (account_id, currency) DO UPDATE SET balance = payable_balances.balance + EXCLUDED.balance;
    END IF;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "payable_balances",
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("ledger_accounts.id"), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("balance", sa.BigInteger(), nullable=False),
    )
    # The trigger's lock on ledger_entries holds postings back until this commits: the backfill
    # and the trigger see the same entries.
    op.execute(KEEP_PAYABLE_BALANCE)
    op.execute(
        "CREATE TRIGGER ledger_entries_payable_balance AFTER INSERT ON ledger_entries "
        "FOR EACH ROW EXECUTE FUNCTION ledger_keep_payable_balance()"
    )
    op.execute(
        "INSERT INTO payable_balances (account_id, currency, balance) "
        "SELECT e.account_id, e.currency, sum(e.amount) FROM ledger_entries e "
        "JOIN ledger_accounts a ON a.id = e.account_id WHERE a.code LIKE 'merchant_payable:%' "
        "GROUP BY e.account_id, e.currency"
    )
    op.drop_index("ledger_entries_account", table_name="ledger_entries")
    op.create_index("ledger_entries_account", "ledger_entries", ["account_id", "currency", "created_at"])


def downgrade() -> None:
    op.drop_index("ledger_entries_account", table_name="ledger_entries")
    op.create_index("ledger_entries_account", "ledger_entries", ["account_id", "currency"])
    op.execute("DROP TRIGGER ledger_entries_payable_balance ON ledger_entries")
    op.execute("DROP FUNCTION ledger_keep_payable_balance")
    op.drop_table("payable_balances")
