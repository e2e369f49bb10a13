"""incidents: major incidents, their timeline, and the tickets, pages and messages of one

At most one incident is open: `incidents.open_slot` is unique and set only while open.
A page is now a ticket's or an incident's, and a message may be about an incident.

Revision ID: 0020_incidents
Revises: 0017_caller_texts
Create Date: 2026-12-14 01:00:00
"""

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision = "0020_incidents"
down_revision = "0019_sign_in_limits"
branch_labels = None
depends_on = None

CALLER_INDEX = "ix_outbox_messages_caller_created_at"
OLD_CALLER_KINDS = "'caller_ticket', 'caller_ack', 'caller_resolved'"
NEW_CALLER_KINDS = OLD_CALLER_KINDS + ", 'caller_incident', 'caller_incident_end'"


def _caller_index(kinds: str) -> None:
    """(Re)create the partial index of caller texts over these kinds."""
    condition = sa.text(f"kind IN ({kinds}) AND recipient <> 'erased'")
    op.create_index(
        CALLER_INDEX,
        "outbox_messages",
        ["created_at"],
        postgresql_where=condition,
        sqlite_where=condition,
    )


def _create_incidents() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("open_slot", sa.Integer(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("opened_by", sa.String(length=320), nullable=False),
        sa.Column("acknowledged_at", UTCDateTime(), nullable=True),
        sa.Column("acknowledged_by_id", sa.Integer(), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(length=320), nullable=True),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.Column("digest_due_at", UTCDateTime(), nullable=True),
        sa.Column("last_digest_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["acknowledged_by_id"],
            ["staff_users.id"],
            name=op.f("fk_incidents_acknowledged_by_id_staff_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        sa.UniqueConstraint("open_slot", name=op.f("uq_incidents_open_slot")),
    )
    op.create_index("ix_incidents_opened_at", "incidents", ["opened_at"])
    op.create_table(
        "incident_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=320), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_updates_incident_id_incidents"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_incident_updates_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_updates")),
    )
    op.create_index(
        "ix_incident_updates_incident_id_kind_at", "incident_updates", ["incident_id", "kind", "at"]
    )
    op.create_index(op.f("ix_incident_updates_ticket_id"), "incident_updates", ["ticket_id"])


def upgrade() -> None:
    """Apply this revision."""
    _create_incidents()
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("incident_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_tickets_incident_id_incidents"), "incidents", ["incident_id"], ["id"]
        )
        batch.create_index(op.f("ix_tickets_incident_id"), ["incident_id"])
    with op.batch_alter_table("pages") as batch:
        batch.alter_column("ticket_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("incident_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_pages_incident_id_incidents"), "incidents", ["incident_id"], ["id"]
        )
        batch.create_unique_constraint(op.f("uq_pages_incident_id"), ["incident_id"])
    op.drop_index(CALLER_INDEX, table_name="outbox_messages")
    with op.batch_alter_table("outbox_messages") as batch:
        batch.add_column(sa.Column("incident_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_outbox_messages_incident_id_incidents"), "incidents", ["incident_id"], ["id"]
        )
        batch.create_index("ix_outbox_messages_incident_id_kind", ["incident_id", "kind"])
    _caller_index(NEW_CALLER_KINDS)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(CALLER_INDEX, table_name="outbox_messages")
    with op.batch_alter_table("outbox_messages") as batch:
        batch.drop_index("ix_outbox_messages_incident_id_kind")
        batch.drop_constraint(op.f("fk_outbox_messages_incident_id_incidents"), type_="foreignkey")
        batch.drop_column("incident_id")
    _caller_index(OLD_CALLER_KINDS)
    op.execute("DELETE FROM pages WHERE ticket_id IS NULL")
    with op.batch_alter_table("pages") as batch:
        batch.drop_constraint(op.f("uq_pages_incident_id"), type_="unique")
        batch.drop_constraint(op.f("fk_pages_incident_id_incidents"), type_="foreignkey")
        batch.drop_column("incident_id")
        batch.alter_column("ticket_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("tickets") as batch:
        batch.drop_index(op.f("ix_tickets_incident_id"))
        batch.drop_constraint(op.f("fk_tickets_incident_id_incidents"), type_="foreignkey")
        batch.drop_column("incident_id")
    op.drop_table("incident_updates")
    op.drop_table("incidents")
