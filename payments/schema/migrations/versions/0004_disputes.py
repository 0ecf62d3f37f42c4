"""Disputes (chargebacks on our payments) and transfer reversals (a merchant's deficit taken back
from its paid payouts).

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DISPUTE_STATUSES = (
    "warning_needs_response",
    "warning_under_review",
    "warning_closed",
    "needs_response",
    "under_review",
    "won",
    "lost",
)


def _timestamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "disputes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("stripe_dispute_id", sa.String(length=255), nullable=False),
        sa.Column("tx_id", sa.String(length=64), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("evidence_due_by", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evidence_text", sa.Text(), nullable=True),
        sa.Column("workflow_id", sa.String(length=512), nullable=False),
        *_timestamps(),
        sa.CheckConstraint("status IN (" + ", ".join(f"'{s}'" for s in DISPUTE_STATUSES) + ")", name="status_known"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("fee >= 0", name="fee_not_negative"),
        sa.ForeignKeyConstraint(["tx_id"], ["transactions.id"]),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stripe_dispute_id"),
    )
    op.create_index(op.f("ix_disputes_tx_id"), "disputes", ["tx_id"], unique=False)
    op.create_index("disputes_merchant_created", "disputes", ["merchant_id", "created_at", "id"], unique=False)
    op.create_index("disputes_created", "disputes", ["created_at", "id"], unique=False)
    op.create_table(
        "transfer_reversals",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("recovery_id", sa.String(length=255), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("payout_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("stripe_reversal_id", sa.String(length=255), nullable=True),
        sa.Column("failure_code", sa.String(length=128), nullable=True),
        *_timestamps(),
        sa.CheckConstraint("status IN ('pending', 'reversed', 'failed')", name="status_known"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"]),
        sa.ForeignKeyConstraint(["payout_id"], ["payouts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("recovery_id", "payout_id", name="transfer_reversals_recovery_payout"),
        sa.UniqueConstraint("stripe_reversal_id"),
    )
    op.create_index(
        "transfer_reversals_merchant_created", "transfer_reversals", ["merchant_id", "created_at", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("transfer_reversals")
    op.drop_table("disputes")
