"""dashboard: find tickets by caller number

Revision ID: 0002_dashboard
Revises: 0001
Create Date: 2026-11-27 04:40:00
"""

from alembic import op

revision = "0002_dashboard"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_index("ix_tickets_caller", "tickets", ["caller"], unique=False)


def downgrade() -> None:
    """Undo this revision."""
    op.drop_index("ix_tickets_caller", table_name="tickets")
