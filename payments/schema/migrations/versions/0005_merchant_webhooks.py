"""Merchant webhooks: endpoints (secrets encrypted), deliveries (one per event and endpoint) and
their attempts; outbox events gain the mark the webhook fan-out sets once it started their deliveries.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Events written before webhooks existed are not sent: they count as fanned out (a constant
    # default is stored once, not written into every row), and new rows start unmarked.
    op.add_column(
        "outbox_events",
        sa.Column("fanned_out_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=True),
    )
    op.alter_column("outbox_events", "fanned_out_at", server_default=None)
    op.create_index(
        "outbox_events_not_fanned_out", "outbox_events", ["id"], postgresql_where=sa.text("fanned_out_at IS NULL")
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("merchant_id", sa.String(64), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("enabled_events", postgresql.JSONB(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("secret_key_id", sa.String(64), nullable=False),
        sa.Column("previous_secret", sa.LargeBinary(), nullable=True),
        sa.Column("previous_secret_key_id", sa.String(64), nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("status IN ('enabled', 'disabled')", name="status_known"),
    )
    op.create_index("webhook_endpoints_merchant_created", "webhook_endpoints", ["merchant_id", "created_at", "id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "endpoint_id", sa.String(64), sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("event_id", sa.BigInteger(), sa.ForeignKey("outbox_events.id"), nullable=False),
        sa.Column("merchant_id", sa.String(64), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("endpoint_id", "event_id", name="webhook_deliveries_endpoint_event"),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status_known"),
    )
    op.create_index("webhook_deliveries_merchant_created", "webhook_deliveries", ["merchant_id", "created_at", "id"])
    op.create_index("webhook_deliveries_event", "webhook_deliveries", ["event_id"])
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "delivery_id",
            sa.String(64),
            sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text(), server_default="", nullable=False),
        sa.Column("error", sa.String(64), nullable=True),
    )
    op.create_index("webhook_attempts_delivery", "webhook_attempts", ["delivery_id", "id"])


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
    op.drop_index("outbox_events_not_fanned_out", table_name="outbox_events")
    op.drop_column("outbox_events", "fanned_out_at")
