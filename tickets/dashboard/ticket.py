"""A ticket's page: everything about one ticket, and the actions staff take on it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from sqlalchemy.orm import joinedload, selectinload

from core.db import db, unit_of_work
from tickets import actions, lifecycle, paged
from tickets.actions import TicketAction
from tickets.auth import current_staff
from tickets.dashboard import bp, error_page, first_error
from tickets.dashboard.display import local_today
from tickets.forms import (
    AcknowledgeForm,
    CategoryForm,
    NoteForm,
    RateApprovalForm,
    ReleaseWeekForm,
    ReopenForm,
    StatusForm,
    TimeForm,
)
from tickets.labels import status_label
from tickets.models import Contact, StaffUser, Ticket, TicketCall, TicketEvent
from tickets.releases import suggest_release_week


@dataclass(frozen=True)
class PageAction:
    """A form on the ticket page: where it posts, its name on the page, and what it changes."""

    path: str  # under /support/tickets/<number>/
    endpoint: str  # what the templates' url_for names
    key: str  # the form's name in the page's `forms`
    form: type[FlaskForm]
    action: TicketAction
    done: Callable[[FlaskForm], str]  # the message flashed after the change


def _said(message: str) -> Callable[[FlaskForm], str]:
    return lambda _form: message


# In the order of PageAction's fields.
PAGE_ACTIONS = (
    PageAction(
        "acknowledge",
        "acknowledge",
        "acknowledge",
        AcknowledgeForm,
        actions.ACKNOWLEDGE,
        _said("Acknowledged and assigned to you."),
    ),
    PageAction(
        "status",
        "change_status",
        "status",
        StatusForm,
        actions.CHANGE_STATUS,
        lambda form: f"Status changed to {status_label(form.status.data or '').lower()}.",
    ),
    PageAction("reopen", "reopen", "reopen", ReopenForm, actions.REOPEN, _said("Ticket reopened.")),
    PageAction(
        "category",
        "change_category",
        "category",
        CategoryForm,
        actions.CHANGE_CATEGORY,
        _said("Category saved."),
    ),
    PageAction("notes", "add_note", "note", NoteForm, actions.ADD_NOTE, _said("Note added.")),
    PageAction("time", "log_time", "time", TimeForm, actions.LOG_TIME, _said("Time logged.")),
    PageAction(
        "rate-approval",
        "approve_rate",
        "rate",
        RateApprovalForm,
        actions.APPROVE_RATE,
        _said("The customer's approval of the standard rate is recorded."),
    ),
    PageAction(
        "release-week",
        "release_week",
        "release_week",
        ReleaseWeekForm,
        actions.SET_RELEASE_WEEK,
        _said("Release week saved."),
    ),
)


# What the ticket page shows, loaded up front.
PAGE_LOADING = (
    joinedload(Ticket.contact).selectinload(Contact.phones),
    joinedload(Ticket.organization),
    joinedload(Ticket.acknowledged_by),
    joinedload(Ticket.assigned_to),
    selectinload(Ticket.calls).joinedload(TicketCall.contact),
    selectinload(Ticket.events).joinedload(TicketEvent.staff),
    selectinload(Ticket.time_entries),
)


def ticket_forms(ticket: Ticket) -> dict[str, FlaskForm]:
    """Return fresh action forms for a ticket, each carrying the version shown."""
    version = {"version": ticket.version}
    forms = {item.key: item.form(formdata=None, data=version) for item in PAGE_ACTIONS}
    forms["status"].status.choices = {s: status_label(s) for s in lifecycle.next_statuses(ticket)}
    forms["status"].release_week.data = ticket.release_week or suggest_release_week(local_today())
    forms["category"].category.data = ticket.category
    forms["release_week"].release_week.data = ticket.release_week
    return forms


def _staff_name(staff_id: int | None) -> str | None:
    staff = db.session.get(StaffUser, staff_id) if staff_id is not None else None
    return staff.name if staff is not None else None


def render_ticket(
    number: str, *, error: str | None = None, status: int = 200, keep: dict | None = None
):
    """Render a ticket's page; forms in `keep` replace the fresh ones, to show what was sent."""
    try:
        ticket = lifecycle.find_ticket(db.session, number, options=PAGE_LOADING)
    except lifecycle.TicketNotFound as exc:
        return error_page(str(exc), 404, title="Unknown ticket")
    forms = ticket_forms(ticket)
    for name, form in (keep or {}).items():
        if hasattr(form, "version"):
            form.version.data = ticket.version
        if name == "status":
            form.status.choices = forms["status"].status.choices
        forms[name] = form
    sids = {call.sid for call in ticket.calls}
    call_events: dict[str, list[TicketEvent]] = {sid: [] for sid in sids}
    history: list[TicketEvent] = []
    for event in ticket.events:
        if event.call_sid in sids:
            call_events[event.call_sid].append(event)
        else:
            history.append(event)
    body = render_template(
        "support/ticket.html",
        ticket=ticket,
        forms=forms,
        error=error,
        call_events=call_events,
        history=list(reversed(history)),
        summary=lifecycle.time_summary(db.session, ticket),
        time_to_acknowledge=lifecycle.time_to_acknowledge(ticket),
        lines=sorted({call.line for call in ticket.calls}),
        is_admin=current_staff().role == "admin",
        rate_approver=_staff_name(ticket.rate_approved_by_id),
        free_minutes=lifecycle.FREE_QUESTION_MINUTES,
        messages=paged.messages_of(db.session, ticket.id),
    )
    return body, status


@bp.get("/tickets/<number>")
def ticket(number: str):
    """Show everything about one ticket, with the actions staff can take."""
    return render_ticket(number)


def apply_page_action(number: str, item: PageAction):
    """Validate the posted form, make its one lifecycle change and show the outcome."""
    form = item.form()
    try:
        ticket = lifecycle.find_ticket(db.session, number)
    except lifecycle.TicketNotFound as exc:
        return error_page(str(exc), 404, title="Unknown ticket")
    if not form.validate():
        return render_ticket(
            ticket.number, error=first_error(form), status=400, keep={item.key: form}
        )
    try:
        item.action.apply(
            db.session,
            ticket=ticket,
            staff=current_staff(),
            read=lambda name: getattr(form, name).data,
        )
    except lifecycle.LifecycleError as exc:
        db.session.rollback()
        keep = {} if isinstance(exc, lifecycle.StaleTicket) else {item.key: form}
        return render_ticket(ticket.number, error=str(exc), status=exc.status_code, keep=keep)
    flash(item.done(form), "success")
    return redirect(url_for(".ticket", number=ticket.number), code=303)


def _page_action_view(item: PageAction) -> Callable[[str], object]:
    def view(number: str):
        return apply_page_action(number, item)

    return view


for _item in PAGE_ACTIONS:
    bp.add_url_rule(
        f"/tickets/<number>/{_item.path}",
        _item.endpoint,
        unit_of_work(_page_action_view(_item)),
        methods=["POST"],
    )
