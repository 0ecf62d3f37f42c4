"""The ledger's two insert triggers run once per INSERT statement, over the rows it inserted (a
transition table), instead of once per entry: a capture's five entries cost one balance check and
one upsert of the merchant's kept balance, not five of each.

A posting now balances within the statement that inserts its entries, and is refused at once if it
does not; before, the check was deferred to commit, so a posting could be inserted one entry per
statement. Every writer inserts a posting's entries in one statement (`ledger.post_all`), and a
stricter check costs nothing there.

Revision ID: 0013_ledger_checks_per_statement
Revises: 0012_another_card
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_ledger_checks_per_statement"
down_revision: str | None = "0012_another_card"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECK_BALANCED = """
CREATE OR REPLACE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unbalanced record;
BEGIN
    SELECT e.ledger_transaction_id AS id, e.currency INTO unbalanced FROM ledger_entries e
    WHERE e.ledger_transaction_id IN (SELECT ledger_transaction_id FROM posted)
    GROUP BY e.ledger_transaction_id, e.currency HAVING sum(e.amount) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger transaction % does not sum to zero in %',
            unbalanced.id, unbalanced.currency USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
"""

# Rows in key order: two postings to the same merchants lock their balances in the same order.
KEEP_PAYABLE_BALANCE = """
CREATE OR REPLACE FUNCTION ledger_keep_payable_balance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO payable_balances (account_id, currency, balance)
    SELECT p.account_id, p.currency, sum(p.amount) FROM posted p
    JOIN ledger_accounts a ON a.id = p.account_id AND a.code LIKE 'merchant_payable:%'
    GROUP BY p.account_id, p.currency ORDER BY p.account_id, p.currency
    ON CONFLICT (account_id, currency) DO UPDATE SET balance = payable_balances.balance + EXCLUDED.balance;
    RETURN NULL;
END $$;
"""

# What 0001 and 0006 made, for the downgrade.
CHECK_BALANCED_PER_ROW = """
CREATE OR REPLACE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unbalanced text;
BEGIN
    SELECT currency INTO unbalanced FROM ledger_entries
    WHERE ledger_transaction_id = NEW.ledger_transaction_id
    GROUP BY currency HAVING sum(amount) <> 0 LIMIT 1;
    IF unbalanced IS NOT NULL THEN
        RAISE EXCEPTION 'ledger transaction % does not sum to zero in %',
            NEW.ledger_transaction_id, unbalanced USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
"""

KEEP_PAYABLE_BALANCE_PER_ROW = """
CREATE OR REPLACE FUNCTION ledger_keep_payable_balance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM ledger_accounts WHERE id = NEW.account_id AND code LIKE 'merchant_payable:%') THEN
        INSERT INTO payable_balances (account_id, currency, balance) VALUES (NEW.account_id, NEW.currency, NEW.amount)
        ON CONFLICT (account_id, currency) DO UPDATE SET balance = payable_balances.balance + EXCLUDED.balance;
    END IF;
    RETURN NULL;
END $$;
"""

TRIGGERS = ("ledger_entries_balanced", "ledger_entries_payable_balance")


def _drop_triggers() -> None:
    for trigger in TRIGGERS:
        op.execute(f"DROP TRIGGER {trigger} ON ledger_entries")


def upgrade() -> None:
    _drop_triggers()
    op.execute(CHECK_BALANCED)
    op.execute(KEEP_PAYABLE_BALANCE)
    for trigger, function in zip(TRIGGERS, ("ledger_check_balanced", "ledger_keep_payable_balance"), strict=True):
        op.execute(
            f"CREATE TRIGGER {trigger} AFTER INSERT ON ledger_entries REFERENCING NEW TABLE AS posted "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )


def downgrade() -> None:
    _drop_triggers()
    op.execute(CHECK_BALANCED_PER_ROW)
    op.execute(KEEP_PAYABLE_BALANCE_PER_ROW)
    op.execute(
        "CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced()"
    )
    op.execute(
        "CREATE TRIGGER ledger_entries_payable_balance AFTER INSERT ON ledger_entries "
        "FOR EACH ROW EXECUTE FUNCTION ledger_keep_payable_balance()"
    )
