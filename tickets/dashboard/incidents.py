"""Major incidents in the dashboard: the list (and opening one by hand), an incident's page
with its organisations, tickets and timeline, and support's updates, acknowledgement and
resolution."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from core.clock import utcnow
from core.db import db, unit_of_work
from tickets import paging
from tickets.auth import current_staff
from tickets.availability import active_announcement
from tickets.dashboard import bp, error_page, first_error
from tickets.dashboard.incident_forms import (
    IncidentActionForm,
    IncidentUpdateForm,
    OpenIncidentForm,
    ResolveIncidentForm,
)
from tickets.incidents import Incident, current_incident, grouping, pages, spoken_text, telling
from tickets.incidents.documents import members
from tickets.models import OutboxMessage, Ticket


def _forms(**keep) -> dict:
    forms = {
        "update": IncidentUpdateForm(),
        "resolve": ResolveIncidentForm(),
        "acknowledge": IncidentActionForm(),
    }
    forms.update(keep)
    return forms


@bp.get("/incidents")
def incidents(open_form: OpenIncidentForm | None = None, status: int = 200):
    """List major incidents, newest first, and open one by hand while none is open."""
    found = db.session.scalars(
        select(Incident).order_by(Incident.opened_at.desc(), Incident.id.desc()).limit(100)
    ).all()
    rows = [(incident, members(db.session, incident)) for incident in found]
    form = open_form or OpenIncidentForm()
    if open_form is None:
        announcement = active_announcement(db.session)
        form.summary.data = announcement.text_nl if announcement is not None else ""
    return render_template(
        "support/incidents.html", rows=rows, form=form, open_now=current_incident(db.session)
    ), status


@bp.post("/incidents")
@unit_of_work
def open_incident():
    """Open an incident with support's summary; recent outage reports join it."""
    form = OpenIncidentForm()
    if not form.validate():
        flash(first_error(form), "error")
        return incidents(open_form=form, status=400)
    staff = current_staff()
    try:
        incident = grouping.open_by_hand(
            db.session, summary=form.summary.data, opened_by=staff.email, now=utcnow()
        )
    except (grouping.AlreadyOpen, ValueError) as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return incidents(open_form=form, status=409)
    flash(f"Incident {incident.number} is open; the rota is paged.", "success")
    return redirect(url_for(".incident", number=incident.number), code=303)


def render_incident(number: int, *, status: int = 200, **keep):
    """Render an incident's page, keeping any form that did not validate."""
    incident = db.session.scalar(
        select(Incident)
        .where(Incident.id == number)
        .options(selectinload(Incident.updates), selectinload(Incident.acknowledged_by))
        .execution_options(populate_existing=True)
    )
    if incident is None:
        return error_page(f"There is no incident {number}.", 404, title="Unknown incident")
    tickets = db.session.scalars(
        select(Ticket)
        .where(Ticket.incident_id == incident.id)
        .options(selectinload(Ticket.organization), selectinload(Ticket.contact))
        .order_by(Ticket.id)
    ).all()
    messages = db.session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.incident_id == incident.id,
            OutboxMessage.kind.in_((paging.PAGE, paging.ACK_NOTICE, pages.INCIDENT_DIGEST)),
        )
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
    ).all()
    texted = db.session.scalar(
        select(func.count(OutboxMessage.id)).where(
            OutboxMessage.incident_id == incident.id,
            OutboxMessage.kind.not_in((paging.PAGE, paging.ACK_NOTICE, pages.INCIDENT_DIGEST)),
        )
    )
    organizations = list(dict.fromkeys(t.organization.name for t in tickets if t.organization))
    body = render_template(
        "support/incident.html",
        incident=incident,
        tickets=tickets,
        organizations=organizations,
        heard=spoken_text(incident),
        timeline=list(reversed(incident.updates)),
        messages=messages,
        texted=texted or 0,
        forms=_forms(**keep),
    )
    return body, status


@bp.get("/incidents/<id:number>")
def incident(number: int):
    """Show an incident: summary, organisations and tickets, timeline, who acknowledged."""
    return render_incident(number)


def _act(number: int, form, key: str, change, done: str):
    """Validate `form`, apply `change(incident, form)` as the signed-in staff, show the outcome."""
    found = db.session.get(Incident, number)
    if found is None:
        return error_page(f"There is no incident {number}.", 404, title="Unknown incident")
    if not form.validate():
        flash(first_error(form), "error")
        return render_incident(number, status=400, **{key: form})
    try:
        said = change(found, form)
    except (pages.NotOpen, ValueError) as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return render_incident(number, status=409, **{key: form})
    flash(said or done, "success")
    return redirect(url_for(".incident", number=number), code=303)


@bp.post("/incidents/<id:number>/updates")
@unit_of_work
def incident_update(number: int):
    """Post an update: texted to every caller who may be texted, heard by new callers."""

    def change(found: Incident, form: IncidentUpdateForm) -> str:
        told = telling.post_update(
            db.session,
            incident=found,
            text=form.text.data,
            author=current_staff().email,
            now=utcnow(),
        )
        return f"Update posted; {told.texted} caller(s) will get it by SMS."

    return _act(number, IncidentUpdateForm(), "update", change, "Update posted.")


@bp.post("/incidents/<id:number>/acknowledge")
@unit_of_work
def acknowledge_incident(number: int):
    """Acknowledge the incident: its paging and that of every ticket in it stop."""

    def change(found: Incident, form: IncidentActionForm) -> str:
        staff = current_staff()
        first = pages.acknowledge(
            db.session, incident=found, staff=staff, via="dashboard", now=utcnow()
        )
        return "" if first else f"Incident {found.number} was already acknowledged."

    done = f"Incident {number} is acknowledged in your name; paging stopped."
    return _act(number, IncidentActionForm(), "acknowledge", change, done)


@bp.post("/incidents/<id:number>/resolve")
@unit_of_work
def resolve_incident(number: int):
    """Resolve the incident and tell its callers; its tickets too when ticked."""

    def change(found: Incident, form: ResolveIncidentForm) -> str:
        staff = current_staff()
        told = telling.resolve(
            db.session,
            incident=found,
            text=form.text.data,
            author=staff.email,
            staff=staff,
            resolve_tickets=bool(form.resolve_tickets.data),
            now=utcnow(),
        )
        return f"Incident {found.number} is resolved; {told.texted} caller(s) will be told by SMS."

    return _act(number, ResolveIncidentForm(), "resolve", change, "Resolved.")
