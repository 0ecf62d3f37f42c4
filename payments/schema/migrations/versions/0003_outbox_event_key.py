"""Outbox: one row per (subject, transition), enforced by a unique event_key, so a retried write
cannot publish one state change twice under two event ids.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox_events", sa.Column("event_key", sa.String(255), nullable=True))
    # Rows written before the key existed (duplicates included) keep their own, unique by id.
    op.execute("UPDATE outbox_events SET event_key = aggregate_id || ':' || type || ':legacy:' || id")
    op.alter_column("outbox_events", "event_key", nullable=False)
    op.create_unique_constraint("outbox_events_event_key_key", "outbox_events", ["event_key"])


def downgrade() -> None:
    op.drop_constraint("outbox_events_event_key_key", "outbox_events", type_="unique")
    op.drop_column("outbox_events", "event_key")
