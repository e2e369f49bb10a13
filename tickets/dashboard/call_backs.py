"""Call-backs in the dashboard: the queue on a ticket's and an incident's page, and the button.

The button starts a call-back as the signed-in staff member: their phone rings first, and once
they press 1 the caller is dialled from the emergency line's number.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import flash, redirect, url_for
from sqlalchemy.orm.exc import StaleDataError

from core.clock import utcnow
from core.db import db, unit_of_work
from core.settings import current_settings
from tickets import callback_queue, lifecycle
from tickets.auth import current_staff
from tickets.callback_queue import QueuedCallBack
from tickets.dashboard import bp, error_page, first_error
from tickets.forms import CallBackForm
from tickets.models import Ticket

STATES = {"waiting": "Waiting", "calling": "Being called back", "done": "Called back"}


@bp.app_template_global()
def call_back_queue(tickets: Iterable[Ticket]) -> list[QueuedCallBack]:
    """Return the call-back requests of these tickets: open ones in order of asking, then done."""
    return callback_queue.queue_of(db.session, [ticket.id for ticket in tickets])


@bp.app_template_global()
def call_back_form() -> CallBackForm:
    """Return a fresh form for a Call back button."""
    return CallBackForm(formdata=None)


@bp.app_template_global()
def call_back_state(request: QueuedCallBack) -> str:
    """Say where a call-back request stands, and who called last."""
    state = STATES.get(request.status, request.status)
    if request.engineer is not None and request.status != "waiting":
        state += f" by {request.engineer.name}"
    return state


def _back(form: CallBackForm, ticket: Ticket):
    """Return to the incident's page when the button was there, else to the ticket's."""
    if form.incident.data:
        return redirect(url_for(".incident", number=form.incident.data), code=303)
    return redirect(url_for(".ticket", number=ticket.number), code=303)


@bp.post("/tickets/<number>/call-back")
@unit_of_work
def call_back(number: str):
    """Start a call-back of the ticket's caller: the signed-in engineer's phone rings first."""
    form = CallBackForm()
    try:
        ticket = lifecycle.find_ticket(db.session, number)
    except lifecycle.TicketNotFound as exc:
        return error_page(str(exc), 404, title="Unknown ticket")
    if not form.validate():
        flash(first_error(form), "error")
        return _back(form, ticket)
    staff = current_staff()
    try:
        request = callback_queue.start(
            db.session,
            ticket=ticket,
            engineer=staff,
            countries=current_settings().emergency.call_back_countries,
            now=utcnow(),
            request_id=form.request.data,
        )
    except callback_queue.CallBackError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _back(form, ticket)
    except StaleDataError:
        db.session.rollback()
        flash("Someone started this call-back a moment ago.", "error")
        return _back(form, ticket)
    flash(
        f"Your phone ({staff.phone}) rings first: press 1 and {request.number} is dialled "
        "from the emergency line's number.",
        "success",
    )
    return _back(form, ticket)
