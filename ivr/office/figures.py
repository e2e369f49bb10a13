"""Count what office callers chose at the menu, for the support dashboard's statistics."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.settings import OfficeLine
from ivr.lines import OFFICE
from ivr.models import CallLog
from ivr.office import menu

NO_CHOICE = "No choice"


def count_menu_choices(
    session: Session, *, office: OfficeLine, start: datetime, end: datetime
) -> list[tuple[str, int]]:
    """Return (label, calls) per menu option for office calls started in [start, end).

    Calls are grouped by their whole trail in SQL (a few hundred distinct trails a year), so
    only those trails are read with the menu's own rule; the last row counts the calls in
    which no option was chosen (hung up, or put through to reception after the misses).
    """
    trails = session.execute(
        select(CallLog.choices, func.count())
        .where(CallLog.line == OFFICE, CallLog.started_at >= start, CallLog.started_at < end)
        .group_by(CallLog.choices)
    ).all()
    chosen: Counter[str | None] = Counter()
    for trail, calls in trails:
        chosen[menu.chosen_option(office, trail or "")] += calls
    rows = [(f"{key} · {label}", chosen[key]) for key, label in menu.menu_options(office)]
    return [*rows, (NO_CHOICE, chosen[None])]
