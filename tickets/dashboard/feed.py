"""The live feed: urgent tickets newer than the page shows, and the line's notice, for the alert."""

from __future__ import annotations

from flask import jsonify, render_template, request, url_for

from core.db import db
from tickets.dashboard import bp
from tickets.dashboard.notices import pin_pause_notice
from tickets.labels import REASON_LABELS
from tickets.models import MAX_ID, Ticket
from tickets.queue import latest_ticket_id, new_urgent_tickets


def summary(ticket: Ticket) -> str:
    """Return the one line the alert announces a new urgent ticket with."""
    who = ticket.organization.name if ticket.organization else (ticket.caller or "number withheld")
    if not ticket.verified:
        who = f"unverified caller ({who})"
    reason = REASON_LABELS.get(ticket.reason or "", "urgent call")
    return f"Urgent ticket {ticket.number}: {who}, {reason.lower()}"


@bp.get("/feed")
def feed():
    """Return urgent tickets newer than `after`, with their list rows, and the line's notice."""
    after = request.args.get("after", type=int)
    notice = pin_pause_notice()
    if after is None or not 0 <= after <= MAX_ID:
        return jsonify(latest_id=latest_ticket_id(db.session), tickets=[], notice=notice)
    found = new_urgent_tickets(db.session, after_id=after)
    items = [
        {
            "id": ticket.id,
            "number": ticket.number,
            "url": url_for(".ticket", number=ticket.number),
            "summary": summary(ticket),
            "row": render_template("support/_feed_row.html", ticket=ticket),
        }
        for ticket in found
    ]
    latest = max([after] + [ticket.id for ticket in found])
    return jsonify(latest_id=latest, tickets=items, notice=notice)
