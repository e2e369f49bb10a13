"""call contact: remember who is on each call of a ticket and the reason they gave

Revision ID: 0004_call_contact
Revises: 0003_performance
Create Date: 2026-11-27 05:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_call_contact"
down_revision = "0003_performance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("ticket_calls") as batch:
        batch.add_column(sa.Column("contact_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("reason", sa.String(length=20), nullable=True))
        batch.create_foreign_key(
            op.f("fk_ticket_calls_contact_id_contacts"), "contacts", ["contact_id"], ["id"]
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("ticket_calls") as batch:
        batch.drop_constraint(op.f("fk_ticket_calls_contact_id_contacts"), type_="foreignkey")
        batch.drop_column("reason")
        batch.drop_column("contact_id")
