"""sign-in limits: failed sign-ins counted per source, whatever the address

Revision ID: 0019_sign_in_limits
Revises: 0015_statistics
Create Date: 2026-12-07 09:00:00
"""

from alembic import op

revision = "0019_sign_in_limits"
down_revision = "0018_nightphone"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_index("ix_login_failures_source_at", "login_failures", ["source", "at"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_login_failures_source_at", table_name="login_failures")
