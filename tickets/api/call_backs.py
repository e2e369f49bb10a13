"""Start a call-back from the JSON API: the engineer's phone rings first, then the caller's.

    POST /api/tickets/<number>/call-back   {"engineer": EMAIL}?   202 with the call-back

Without "engineer" the token's own account is rung, which needs a phone. The call itself is
placed by the outbox's sender (once across instances), so 202: accepted, the phone rings in
a moment. Errors are {"error", "code"}: 400 bad input or an unknown engineer, 404 unknown
ticket, 409 no phone (`no_phone`), no number to call back (`not_callable`), or a call-back of
this ticket under way (`call_back_in_progress`).
"""

from __future__ import annotations

from flask import g, jsonify
from sqlalchemy.orm.exc import StaleDataError

from core.clock import utcnow
from core.db import db
from core.settings import current_settings
from tickets import callback_queue, lifecycle
from tickets.api import bp, json_error
from tickets.api.actions import json_body
from tickets.callback_queue import QueuedCallBack
from tickets.models import StaffUser
from tickets.staff import find_staff, token_required


def call_back_to_dict(request: QueuedCallBack) -> dict:
    """Return a call-back request as the API shows it."""
    engineer = request.engineer
    return {
        "id": request.id,
        "ticket": request.ticket.number,
        "status": request.status,
        "number": request.number,
        "requested_at": request.requested_at.isoformat(),
        "asked_by_caller": request.asked_on is not None,
        "started_at": request.started_at.isoformat() if request.started_at else None,
        "attempts": request.attempts,
        "outcome": request.outcome,
        "engineer": None
        if engineer is None
        else {"name": engineer.name, "email": engineer.email, "phone": engineer.phone},
    }


def _engineer(body: dict) -> StaffUser:
    """Return the engineer the body names, else the token's own account."""
    email = body.get("engineer")
    if email is None:
        return g.api_staff
    if not isinstance(email, str) or not email.strip() or len(email) > 320:
        raise lifecycle.InvalidInput("engineer must be a staff member's e-mail address.")
    engineer = find_staff(db.session, email)
    if engineer is None or not engineer.active:
        raise lifecycle.InvalidInput(f"No active staff account {email.strip()[:80]!r}.")
    return engineer


@bp.post("/tickets/<number>/call-back")
@token_required
def start_call_back(number: str):
    """Call the ticket's caller back through the line: the engineer's phone rings first."""
    try:
        body = json_body()
        ticket = lifecycle.find_ticket(db.session, number)
        engineer = _engineer(body)
    except lifecycle.LifecycleError as exc:
        code = "not_found" if isinstance(exc, lifecycle.TicketNotFound) else "invalid_input"
        return json_error(str(exc), exc.status_code, code=code)
    try:
        request = callback_queue.start(
            db.session,
            ticket=ticket,
            engineer=engineer,
            countries=current_settings().emergency.call_back_countries,
            now=utcnow(),
        )
    except callback_queue.CallBackError as exc:
        db.session.rollback()
        return json_error(str(exc), exc.status_code, code=exc.code)
    except StaleDataError:
        db.session.rollback()
        message = "Someone started this call-back a moment ago."
        return json_error(message, 409, code=callback_queue.AlreadyCalling.code)
    return jsonify(call_back=call_back_to_dict(request)), 202
