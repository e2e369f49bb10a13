"""api: indexes that keep filtered ticket lists fast

Revision ID: 0002_api
Revises: 0001
Create Date: 2026-11-27 04:45:00
"""

from alembic import op

revision = "0002_api"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_tickets_priority_created_id": ["priority", "created_at", "id"],
    "ix_tickets_source_created_id": ["source", "created_at", "id"],
    "ix_tickets_reason_created_id": ["reason", "created_at", "id"],
}


def upgrade() -> None:
    """Apply this revision."""
    if op.get_bind().dialect.name == "postgresql":
        # Building an index on a large tickets table outlasts the service's statement timeout.
        op.execute("SET LOCAL statement_timeout = 0")
    for name, columns in INDEXES.items():
        op.create_index(name, "tickets", columns, unique=False)


def downgrade() -> None:
    """Undo this revision."""
    for name in INDEXES:
        op.drop_index(name, table_name="tickets")
