"""privacy: the daily purge's runs, recordings to delete at Twilio, indexes of what is still kept

Revision ID: 0014_privacy
Revises: 0013_paging
Create Date: 2026-12-08 02:00:00
"""

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision = "0014_privacy"
down_revision = "0013_paging"
branch_labels = None
depends_on = None

# Partial indexes over the rows that still hold personal data: the retention purge reads these.
PERSONAL_INDEXES = [
    (
        "ix_tickets_personal_created_at",
        "tickets",
        "created_at",
        "caller IS NOT NULL OR description IS NOT NULL",
    ),
    (
        "ix_ticket_calls_personal_started_at",
        "ticket_calls",
        "started_at",
        "caller IS NOT NULL OR recording_url IS NOT NULL OR recording_sid IS NOT NULL"
        " OR transcription IS NOT NULL",
    ),
    (
        "ix_ticket_events_personal_at",
        "ticket_events",
        "at",
        "detail IS NOT NULL AND kind IN ('voicemail', 'call_recorded', 'description')",
    ),
    (
        "ix_callback_requests_personal_created_at",
        "callback_requests",
        "created_at",
        "caller IS NOT NULL OR recording_url IS NOT NULL OR recording_sid IS NOT NULL",
    ),
    (
        "ix_outbox_messages_caller_created_at",
        "outbox_messages",
        "created_at",
        "kind IN ('caller_ticket', 'caller_ack', 'caller_resolved') AND recipient <> 'erased'",
    ),
    (
        "ix_call_logs_numbered_started_at",
        "call_logs",
        "started_at",
        "from_number IS NOT NULL OR caller_id IS NOT NULL",
    ),
]


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "maintenance_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("runner", sa.String(length=100), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_runs")),
        sa.UniqueConstraint("job", "day", name=op.f("uq_maintenance_runs_job")),
    )
    op.create_table(
        "recording_deletions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_sid", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_deletions")),
        sa.UniqueConstraint("recording_sid", name=op.f("uq_recording_deletions_recording_sid")),
    )
    op.create_index(
        "ix_recording_deletions_pending",
        "recording_deletions",
        ["requested_at"],
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    for name, table, column, condition in PERSONAL_INDEXES:
        op.create_index(
            name,
            table,
            [column],
            postgresql_where=sa.text(condition),
            sqlite_where=sa.text(condition),
        )


def downgrade() -> None:
    """Revert this revision."""
    for name, table, _column, _condition in reversed(PERSONAL_INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_table("recording_deletions")
    op.drop_table("maintenance_runs")
