"""nightphone: voicemail transcripts on ticket calls; paging state by channel

Revision ID: 0018_nightphone
Revises: 0017_caller_texts
Create Date: 2026-12-09 01:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_nightphone"
down_revision = "0017_caller_texts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("ticket_calls") as batch:
        batch.add_column(sa.Column("transcript_state", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("transcript_confidence", sa.Float(), nullable=True))
        batch.add_column(sa.Column("transcript_sequence", sa.Integer(), nullable=True))
    op.create_index(
        "ix_outbox_messages_channel_updated_at", "outbox_messages", ["channel", "updated_at"]
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_outbox_messages_channel_updated_at", table_name="outbox_messages")
    with op.batch_alter_table("ticket_calls") as batch:
        batch.drop_column("transcript_sequence")
        batch.drop_column("transcript_confidence")
        batch.drop_column("transcript_state")
