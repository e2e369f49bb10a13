"""Where paging stands, and the pages and messages that failed or still wait.

The page says what `/health` says ("ok", "off", "cannot_send": `tickets.paging_state`), so an
empty list never reads as "all is well" while nothing can be sent.
"""

from __future__ import annotations

from datetime import timedelta

from flask import render_template
from sqlalchemy import func, select

from core.clock import utcnow
from core.db import db
from tickets.dashboard import bp
from tickets.dashboard.notices import current_paging_state
from tickets.models import OutboxMessage

SHOWN = 200
# The queue page warns about failures this recent.
RECENT = timedelta(days=2)


def recent_failures() -> int:
    """Return how many messages failed for good in the last two days."""
    return db.session.scalar(
        select(func.count(OutboxMessage.id)).where(
            OutboxMessage.status == "failed", OutboxMessage.updated_at >= utcnow() - RECENT
        )
    )


@bp.get("/messages")
def messages():
    """Show failed and waiting messages, newest first, with the reason they failed."""
    rows = db.session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.status.in_(("failed", "pending", "sending")))
        .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
        .limit(SHOWN)
    ).all()
    return render_template("support/messages.html", messages=rows, paging=current_paging_state())
