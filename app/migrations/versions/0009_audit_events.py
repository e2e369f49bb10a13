"""audit events: who changed a line-wide switch or the rota, and when

Revision ID: 0009_audit_events
Revises: 0008_session_epoch
Create Date: 2026-11-30 00:40:00
"""

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision = "0009_audit_events"
down_revision = "0008_session_epoch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_audit_events_at", table_name="audit_events")
    op.drop_table("audit_events")
