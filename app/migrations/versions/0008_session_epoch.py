"""session epoch: signing out and deactivation end every session of the account

Revision ID: 0008_session_epoch
Revises: 0007_urgent_lock
Create Date: 2026-11-30 00:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_session_epoch"
down_revision = "0007_urgent_lock"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.add_column(
        "staff_users",
        sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("session_epoch")
