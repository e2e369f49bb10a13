"""token expiry: API tokens stop working after their time

Revision ID: 0011_token_expiry
Revises: 0010_login_failures
Create Date: 2026-11-30 01:00:00
"""

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision = "0011_token_expiry"
down_revision = "0010_login_failures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("api_tokens", sa.Column("expires_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")
