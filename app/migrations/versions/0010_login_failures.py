"""login failures: counted per e-mail address and source instead of per account

Revision ID: 0010_login_failures
Revises: 0009_audit_events
Create Date: 2026-11-30 00:50:00
"""

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision = "0010_login_failures"
down_revision = "0009_audit_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index(
        "ix_login_failures_email_source_at", "login_failures", ["email", "source", "at"]
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_login_failures_email_source_at", table_name="login_failures")
    op.drop_table("login_failures")
