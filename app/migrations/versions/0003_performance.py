"""performance: find a call's timeline events by its sid without scanning them all

Revision ID: 0003_performance
Revises: 0002_api, 0002_dashboard
Create Date: 2026-11-27 06:30:00
"""

from alembic import op

revision = "0003_performance"
down_revision = ("0002_api", "0002_dashboard")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    if op.get_bind().dialect.name == "postgresql":
        # Building an index on a long history outlasts the service's statement timeout.
        op.execute("SET LOCAL statement_timeout = 0")
    op.create_index(
        "ix_ticket_events_call_sid_kind", "ticket_events", ["call_sid", "kind"], unique=False
    )


def downgrade() -> None:
    """Undo this revision."""
    op.drop_index("ix_ticket_events_call_sid_kind", table_name="ticket_events")
