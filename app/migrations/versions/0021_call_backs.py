"""call backs: the queue of callers asking to be called back, and who is on a call now

`ticket_calls.answered_by_number` is the phone of the engineer who accepted a call: busy until
the call's end is in, so the line rings them for no other call meanwhile.

Revision ID: 0021_call_backs
Revises: 0020_incidents
Create Date: 2026-12-15 01:00:00
"""

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision = "0021_call_backs"
down_revision = "0020_incidents"
branch_labels = None
depends_on = None

BUSY = sa.text("answered_by_number IS NOT NULL AND ended_at IS NULL")
PERSONAL = sa.text("number IS NOT NULL")


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("ticket_calls") as batch:
        batch.add_column(sa.Column("answered_by_number", sa.String(length=20), nullable=True))
    op.create_index(
        "ix_ticket_calls_busy",
        "ticket_calls",
        ["answered_by_number", "answered_at"],
        postgresql_where=BUSY,
        sqlite_where=BUSY,
    )
    op.create_table(
        "queued_call_backs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("asked_on", sa.String(length=64), nullable=True),
        sa.Column("number", sa.String(length=64), nullable=True),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("engineer_id", sa.Integer(), nullable=True),
        sa.Column("call_sid", sa.String(length=64), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["engineer_id"],
            ["staff_users.id"],
            name=op.f("fk_queued_call_backs_engineer_id_staff_users"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_queued_call_backs_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queued_call_backs")),
        sa.UniqueConstraint("asked_on", name=op.f("uq_queued_call_backs_asked_on")),
        sa.UniqueConstraint("call_sid", name=op.f("uq_queued_call_backs_call_sid")),
    )
    op.create_index(
        op.f("ix_queued_call_backs_ticket_id"), "queued_call_backs", ["ticket_id"], unique=False
    )
    op.create_index(
        "ix_queued_call_backs_status_requested_at",
        "queued_call_backs",
        ["status", "requested_at"],
    )
    op.create_index(
        "ix_queued_call_backs_personal_requested_at",
        "queued_call_backs",
        ["requested_at"],
        postgresql_where=PERSONAL,
        sqlite_where=PERSONAL,
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("queued_call_backs")
    op.drop_index("ix_ticket_calls_busy", table_name="ticket_calls")
    with op.batch_alter_table("ticket_calls") as batch:
        batch.drop_column("answered_by_number")
