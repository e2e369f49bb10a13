"""The line-wide notice every dashboard page shows while it holds: PIN checks paused."""

from __future__ import annotations

from flask import g

from core.db import db
from tickets import pin_guard
from tickets.dashboard import bp
from tickets.dashboard.display import format_local


def pin_pause_notice() -> str | None:
    """Return the notice of a pause of PIN checks in force (asked once per request), or None."""
    if "pin_pause_notice" not in g:
        pause = pin_guard.active_pause(db.session)
        g.pin_pause_notice = None
        if pause is not None:
            g.pin_pause_notice = (
                "PIN checks on the emergency line are paused until "
                f"{format_local(pause.paused_until)}: {pin_guard.describe_pause(pause)}. "
                "Callers whose number is not recognised go through to the engineers as "
                "unverified; the engineer decides."
            )
    return g.pin_pause_notice


@bp.context_processor
def _notices() -> dict:
    # A callable: only pages that show the notice (those built on base.html) ask the database.
    return {"pin_pause_notice": pin_pause_notice}
