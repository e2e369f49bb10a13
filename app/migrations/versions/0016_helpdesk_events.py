"""helpdesk events: one delivery row per event and receiver, and each receiver's state

Revision ID: 0016_helpdesk_events
Revises: 0015_statistics
Create Date: 2026-12-10 01:00:00
"""

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision = "0016_helpdesk_events"
down_revision = "0015_statistics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "helpdesk_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("msg_id", sa.String(length=40), nullable=False),
        sa.Column("receiver", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("data", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("retry_until", UTCDateTime(), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_helpdesk_deliveries")),
        sa.UniqueConstraint("receiver", "msg_id", name=op.f("uq_helpdesk_deliveries_receiver")),
    )
    op.create_index(
        "ix_helpdesk_deliveries_status_next_attempt_at",
        "helpdesk_deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        "ix_helpdesk_deliveries_receiver_subject_id",
        "helpdesk_deliveries",
        ["receiver", "subject", "id"],
    )
    op.create_table(
        "helpdesk_receivers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("disabled_at", UTCDateTime(), nullable=True),
        sa.Column("disabled_reason", sa.String(length=500), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_helpdesk_receivers")),
        sa.UniqueConstraint("name", name=op.f("uq_helpdesk_receivers_name")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("helpdesk_receivers")
    op.drop_index("ix_helpdesk_deliveries_receiver_subject_id", table_name="helpdesk_deliveries")
    op.drop_index("ix_helpdesk_deliveries_status_next_attempt_at", table_name="helpdesk_deliveries")
    op.drop_table("helpdesk_deliveries")
