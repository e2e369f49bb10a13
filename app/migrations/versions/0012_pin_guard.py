"""pin guard: a line-wide pause of PIN checks after too many wrong PINs from all numbers

Revision ID: 0012_pin_guard
Revises: 0011_token_expiry
Create Date: 2026-12-01 00:10:00
"""

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision = "0012_pin_guard"
down_revision = "0011_token_expiry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "pin_guards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("paused_at", UTCDateTime(), nullable=True),
        sa.Column("paused_until", UTCDateTime(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("numbers", sa.Integer(), nullable=False),
        sa.Column("window_minutes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pin_guards")),
    )
    # Wrong PINs are now also counted across all numbers, by time alone.
    op.create_index("ix_pin_failures_at", "pin_failures", ["at"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_pin_failures_at", table_name="pin_failures")
    op.drop_table("pin_guards")
