"""urgent lock: organisations remember their last emergency call, whose write locks the row

Revision ID: 0007_urgent_lock
Revises: 0006_oncall
Create Date: 2026-11-29 23:40:00
"""

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision = "0007_urgent_lock"
down_revision = "0006_oncall"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    # Plain ADD COLUMN: SQLite need not rebuild a table other rows refer to.
    op.add_column(
        "organizations", sa.Column("last_emergency_call_at", UTCDateTime(), nullable=True)
    )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("last_emergency_call_at")
