"""drop call log links: call_logs.contact_id and ticket_id were never written

Who called and which ticket a call joined are kept on ticket_calls (contact_id, ticket_id);
the call log's own copies stayed empty, so they go rather than mislead a reader.

Revision ID: 0005_drop_call_log_links
Revises: 0004_call_contact
Create Date: 2026-11-29 23:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_drop_call_log_links"
down_revision = "0004_call_contact"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("call_logs") as batch:
        batch.drop_constraint(op.f("fk_call_logs_contact_id_contacts"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_call_logs_ticket_id_tickets"), type_="foreignkey")
        batch.drop_column("ticket_id")
        batch.drop_column("contact_id")


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("call_logs") as batch:
        batch.add_column(sa.Column("contact_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("ticket_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_call_logs_contact_id_contacts"), "contacts", ["contact_id"], ["id"]
        )
        batch.create_foreign_key(
            op.f("fk_call_logs_ticket_id_tickets"), "tickets", ["ticket_id"], ["id"]
        )
