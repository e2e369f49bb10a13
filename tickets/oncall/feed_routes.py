"""When each engineer is on call, as an iCalendar feed; the secret URL is the only key."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, request

from core.clock import utcnow
from core.db import db
from tickets.oncall.calendar import feed_for
from tickets.oncall.feeds import staff_for_feed_token
from tickets.rota import segments_of

bp = Blueprint("oncall_feed", __name__)

# A feed shows a month back (the last hand-overs) and a year ahead.
FEED_PAST = timedelta(days=31)
FEED_AHEAD = timedelta(days=366)


@bp.get("/oncall/feed/<token>.ics")
def engineer_feed(token: str):
    """Serve an engineer's own shifts to their calendar app."""
    staff = staff_for_feed_token(db.session, token)
    if staff is None:
        return Response("unknown or revoked feed\n", status=404, mimetype="text/plain")
    now = utcnow()
    segments = segments_of(db.session, staff.id, now - FEED_PAST, now + FEED_AHEAD)
    body = feed_for(staff, segments, product=request.host or "otys-support", now=now)
    response = Response(body, mimetype="text/calendar")
    response.headers["Cache-Control"] = "private, max-age=300"
    return response
