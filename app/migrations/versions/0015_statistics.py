"""statistics: emergency calls found by line and start time

Revision ID: 0015_statistics
Revises: 0014_privacy
Create Date: 2026-12-08 01:00:00
"""

from alembic import op

revision = "0015_statistics"
down_revision = "0014_privacy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_index("ix_ticket_calls_line_started_at", "ticket_calls", ["line", "started_at"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_ticket_calls_line_started_at", table_name="ticket_calls")
