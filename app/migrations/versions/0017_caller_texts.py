"""caller texts: how the caller of each ticket call was recognised, if at all

Only a caller recognised on the call (by caller ID or PIN) may be texted; the ticket's own
`verified` says nothing of a later call that joined it.

Revision ID: 0017_caller_texts
Revises: 0016_helpdesk_events
Create Date: 2026-12-09 01:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_caller_texts"
down_revision = "0016_helpdesk_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("ticket_calls", sa.Column("recognised_by", sa.String(length=10), nullable=True))
    # Calls recognised before this revision say so on their timeline ("... by caller ID").
    for how, said in (("caller_id", "% by caller ID"), ("pin", "% by PIN")):
        op.execute(
            sa.text(
                "UPDATE ticket_calls SET recognised_by = :how WHERE EXISTS (SELECT 1 FROM"
                " ticket_events WHERE ticket_events.call_sid = ticket_calls.sid"
                " AND ticket_events.kind = 'recognised' AND ticket_events.detail LIKE :said)"
            ).bindparams(how=how, said=said)
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("ticket_calls") as batch:
        batch.drop_column("recognised_by")
