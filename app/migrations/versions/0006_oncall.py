"""on call: engineers' phone numbers, calendar feed tokens and the rota's shifts

Revision ID: 0006_oncall
Revises: 0005_drop_call_log_links
Create Date: 2026-11-29 23:30:00
"""

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision = "0006_oncall"
down_revision = "0005_drop_call_log_links"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    # Plain ADD COLUMN and a unique index: a unique constraint would make SQLite rebuild
    # staff_users, and dropping the old table fails while other rows refer to it.
    op.add_column("staff_users", sa.Column("phone", sa.String(length=20), nullable=True))
    op.add_column("staff_users", sa.Column("feed_token_hash", sa.String(length=64), nullable=True))
    op.create_index(
        op.f("ix_staff_users_feed_token_hash"), "staff_users", ["feed_token_hash"], unique=True
    )
    op.create_table(
        "oncall_shifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_oncall_shifts_positive_span")),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_oncall_shifts_staff_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_shifts")),
    )
    op.create_index("ix_oncall_shifts_span", "oncall_shifts", ["starts_at", "ends_at"])
    op.create_index(op.f("ix_oncall_shifts_staff_id"), "oncall_shifts", ["staff_id"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_oncall_shifts_staff_id"), table_name="oncall_shifts")
    op.drop_index("ix_oncall_shifts_span", table_name="oncall_shifts")
    op.drop_table("oncall_shifts")
    op.drop_index(op.f("ix_staff_users_feed_token_hash"), table_name="staff_users")
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("feed_token_hash")
        batch.drop_column("phone")
