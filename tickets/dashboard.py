"""The support dashboard at /support: the ticket queue, ticket pages, voicemails and switches."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from tickets import availability, lifecycle, queue, releases
from tickets.auth import current_staff, login_manager
from tickets.db import db, utcnow
from tickets.forms import (
    HOURS_MODES,
    REASON_LABELS,
    AcknowledgeForm,
    AnnouncementForm,
    CalledBackForm,
    CategoryForm,
    EndAnnouncementForm,
    FilterForm,
    HoursOverrideForm,
    NoteForm,
    RateApprovalForm,
    ReleaseWeekForm,
    ReopenForm,
    StatusForm,
    TimeForm,
)
from tickets.models import (
    CallbackRequest,
    Contact,
    Organization,
    StaffUser,
    Ticket,
    TicketCall,
    TicketEvent,
)
from tickets.recordings import RecordingUnavailable, open_recording

bp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/support",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

PER_PAGE = 50
MAX_PAGE = 10_000
ROLE_LABELS = {"user": "Normal user", "key_user": "Key user", "super_user": "Super user"}
EVENT_LABELS = {
    "ticket_opened": "Ticket opened",
    "call_joined": "Call added to this ticket",
    "recognised": "Caller recognised",
    "triage": "Triage",
    "description": "Spoken description",
    "engineer_rung": "Engineer rung",
    "engineer_refused": "Engineer did not accept",
    "engineer_accepted": "Engineer accepted",
    "engineers_unavailable": "No engineer available",
    "voicemail": "Voicemail left",
    "call_recorded": "Call recorded",
    "call_ended": "Call ended",
    "acknowledged": "Acknowledged",
    "assigned": "Assigned",
    "status": "Status changed",
    "category": "Category changed",
    "note": "Internal note",
    "time": "Time logged",
    "rate_approved": "Standard rate approved",
    "release_week": "Release week changed",
}
OUTCOME_LABELS = {
    "in_progress": "In progress",
    "answered": "Answered by an engineer",
    "voicemail": "Voicemail",
    "abandoned_before_triage": "Caller hung up before triage",
    "abandoned_after_triage": "Caller hung up after triage",
    "abandoned_while_ringing": "Caller hung up while engineers rang",
    "refused": "No engineer accepted",
    "no_answer": "No answer",
}


def local_zone() -> ZoneInfo:
    """Return the time zone staff read times in."""
    settings = current_app.config.get("SETTINGS")
    return ZoneInfo(settings.timezone) if settings is not None else ZoneInfo("UTC")


def local_today() -> date:
    """Return today's date where the support desk is."""
    return utcnow().astimezone(local_zone()).date()


@bp.app_template_filter("local")
def format_local(moment: datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """Render a stored UTC time in the desk's time zone."""
    if moment is None:
        return "—"
    return moment.astimezone(local_zone()).strftime(pattern)


@bp.app_template_filter("duration")
def format_duration(value: timedelta | int | None) -> str:
    """Render a duration as '45 s', '3 min 05 s', '2 h 10 min' or '3 d 4 h'."""
    if value is None:
        return "—"
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    seconds = max(0, seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


bp.add_app_template_global(lifecycle.status_label, "status_label")


@bp.app_template_global("reason_label")
def reason_label(reason: str | None) -> str:
    """Return the readable name of an emergency reason."""
    return REASON_LABELS.get(reason or "", reason or "—")


@bp.app_template_global("role_label")
def role_label(role: str | None) -> str:
    """Return the readable name of a contact's role."""
    return ROLE_LABELS.get(role or "", role or "—")


@bp.app_template_global("event_label")
def event_label(kind: str) -> str:
    """Return the readable name of a timeline event."""
    return EVENT_LABELS.get(kind, kind.replace("_", " ").capitalize())


@bp.app_template_global("outcome_label")
def outcome_label(outcome: str) -> str:
    """Return the readable name of a call's outcome."""
    return OUTCOME_LABELS.get(outcome, outcome)


@bp.before_request
def _require_sign_in():
    if request.endpoint == "dashboard.static":
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


def _error_page(message: str, status: int, title: str = "Not possible"):
    return render_template("support/error.html", title=title, message=message), status


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=local_zone()).astimezone(UTC)


def _queue_filter(form: FilterForm) -> queue.QueueFilter:
    """Return the filter staff asked for, ignoring fields that did not validate."""
    valid = form.validate()
    errors = form.errors if not valid else {}

    def value(name: str):
        return None if name in errors else (getattr(form, name).data or None)

    organization = value("organization")
    created_from = value("created_from")
    created_to = value("created_to")
    settings = current_app.config.get("SETTINGS")
    return queue.QueueFilter(
        status=value("status"),
        priority=value("priority"),
        reason=value("reason"),
        organization_id=int(organization) if organization and organization.isdigit() else None,
        created_from=_day_start(created_from) if created_from else None,
        created_before=_day_start(created_to + timedelta(days=1)) if created_to else None,
        search=(value("q") or "").strip() or None,
        region=getattr(settings, "holiday_country", "NL"),
    )


@bp.get("", strict_slashes=False)
def tickets():
    """Show the ticket queue: open urgent call-tickets first, then newest first."""
    form = FilterForm(request.args)
    organisations = db.session.execute(
        select(Organization.id, Organization.name).order_by(Organization.name).limit(2000)
    ).all()
    form.organization.choices = {"": "Any organisation"} | {
        str(org_id): name for org_id, name in organisations
    }
    filters = _queue_filter(form)
    page = min(max(request.args.get("page", default=1, type=int) or 1, 1), MAX_PAGE)
    result = queue.list_queue(db.session, filters, page=page, per_page=PER_PAGE)
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "support/tickets.html",
        form=form,
        result=result,
        args=args,
        filtered=bool(args),
        latest_id=queue.latest_ticket_id(db.session),
    )


@bp.get("/feed")
def feed():
    """Return urgent tickets newer than `after`, with their list rows, for the live alert."""
    after = request.args.get("after", type=int)
    if after is None or after < 0:
        return jsonify(latest_id=queue.latest_ticket_id(db.session), tickets=[])
    found = queue.new_urgent_tickets(db.session, after_id=after)
    items = [
        {
            "id": ticket.id,
            "number": ticket.number,
            "url": url_for(".ticket", number=ticket.number),
            "summary": _summary(ticket),
            "row": render_template("support/_feed_row.html", ticket=ticket),
        }
        for ticket in found
    ]
    latest = max([after] + [ticket.id for ticket in found])
    return jsonify(latest_id=latest, tickets=items)


def _summary(ticket: Ticket) -> str:
    who = ticket.organization.name if ticket.organization else (ticket.caller or "unknown caller")
    reason = REASON_LABELS.get(ticket.reason or "", "urgent call")
    return f"Urgent ticket {ticket.number}: {who}, {reason.lower()}"


def _load_ticket(number: str) -> Ticket:
    ticket_id = lifecycle.ticket_id_for(number)
    ticket = None
    if ticket_id is not None:
        ticket = db.session.scalar(
            select(Ticket)
            .where(Ticket.id == ticket_id)
            .options(
                joinedload(Ticket.contact).selectinload(Contact.phones),
                joinedload(Ticket.organization),
                joinedload(Ticket.acknowledged_by),
                joinedload(Ticket.assigned_to),
                selectinload(Ticket.calls),
                selectinload(Ticket.events).joinedload(TicketEvent.staff),
                selectinload(Ticket.time_entries),
            )
            .execution_options(populate_existing=True)
        )
    if ticket is None:
        raise lifecycle.TicketNotFound(f"There is no ticket {number[:20]}.")
    return ticket


def _ticket_forms(ticket: Ticket) -> dict[str, FlaskForm]:
    """Return fresh action forms for a ticket, each carrying the version shown."""
    version = {"version": ticket.version}
    next_statuses = lifecycle.next_statuses(ticket)
    status = StatusForm(formdata=None, data=version)
    status.status.choices = {s: lifecycle.status_label(s) for s in next_statuses}
    status.release_week.data = ticket.release_week or releases.suggest_release_week(local_today())
    return {
        "acknowledge": AcknowledgeForm(formdata=None, data=version),
        "status": status,
        "category": CategoryForm(formdata=None, data={**version, "category": ticket.category}),
        "note": NoteForm(formdata=None),
        "time": TimeForm(formdata=None, data=version),
        "rate": RateApprovalForm(formdata=None, data=version),
        "release_week": ReleaseWeekForm(
            formdata=None, data={**version, "release_week": ticket.release_week}
        ),
        "reopen": ReopenForm(formdata=None, data=version),
    }


def _staff_name(staff_id: int | None) -> str | None:
    staff = db.session.get(StaffUser, staff_id) if staff_id is not None else None
    return staff.name if staff is not None else None


def _render_ticket(
    number: str, *, error: str | None = None, status: int = 200, keep: dict | None = None
):
    try:
        ticket = _load_ticket(number)
    except lifecycle.TicketNotFound as exc:
        return _error_page(str(exc), 404, title="Unknown ticket")
    forms = _ticket_forms(ticket)
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
    )
    return body, status


@bp.get("/tickets/<number>")
def ticket(number: str):
    """Show everything about one ticket, with the actions staff can take."""
    return _render_ticket(number)


def _first_error(form: FlaskForm) -> str:
    for field_name, messages in form.errors.items():
        label = getattr(getattr(form, field_name, None), "label", None)
        prefix = f"{label.text}: " if label is not None else ""
        return prefix + messages[0]
    return "The form was not filled in correctly."


def _apply(
    number: str,
    form: FlaskForm,
    key: str,
    change: Callable[[Ticket], object],
    done: str,
):
    """Validate a ticket form, run one lifecycle change and show the outcome."""
    try:
        ticket = lifecycle.find_ticket(db.session, number)
    except lifecycle.TicketNotFound as exc:
        return _error_page(str(exc), 404, title="Unknown ticket")
    if not form.validate():
        return _render_ticket(ticket.number, error=_first_error(form), status=400, keep={key: form})
    try:
        change(ticket)
    except lifecycle.LifecycleError as exc:
        db.session.rollback()
        keep = {} if isinstance(exc, lifecycle.StaleTicket) else {key: form}
        return _render_ticket(ticket.number, error=str(exc), status=exc.status_code, keep=keep)
    flash(done, "success")
    return redirect(url_for(".ticket", number=ticket.number), code=303)


@bp.post("/tickets/<number>/acknowledge")
def acknowledge(number: str):
    """Acknowledge a ticket and assign it to me."""
    form = AcknowledgeForm()
    return _apply(
        number,
        form,
        "acknowledge",
        lambda ticket: lifecycle.acknowledge_ticket(
            db.session, ticket=ticket, staff=current_staff(), expected_version=form.version.data
        ),
        "Acknowledged and assigned to you.",
    )


@bp.post("/tickets/<number>/status")
def change_status(number: str):
    """Move a ticket to another status."""
    form = StatusForm()
    target = form.status.data or ""
    return _apply(
        number,
        form,
        "status",
        lambda ticket: lifecycle.change_status(
            db.session,
            ticket=ticket,
            staff=current_staff(),
            status=target,
            question=form.question.data,
            release_week=form.release_week.data,
            rating=form.rating.data,
            comment=form.comment.data,
            expected_version=form.version.data,
        ),
        f"Status changed to {lifecycle.status_label(target).lower()}.",
    )


@bp.post("/tickets/<number>/reopen")
def reopen(number: str):
    """Reopen a closed ticket (admins)."""
    form = ReopenForm()
    return _apply(
        number,
        form,
        "reopen",
        lambda ticket: lifecycle.reopen_ticket(
            db.session, ticket=ticket, staff=current_staff(), expected_version=form.version.data
        ),
        "Ticket reopened.",
    )


@bp.post("/tickets/<number>/category")
def change_category(number: str):
    """Change a ticket's category."""
    form = CategoryForm()
    return _apply(
        number,
        form,
        "category",
        lambda ticket: lifecycle.change_category(
            db.session,
            ticket=ticket,
            staff=current_staff(),
            category=form.category.data,
            expected_version=form.version.data,
        ),
        "Category saved.",
    )


@bp.post("/tickets/<number>/notes")
def add_note(number: str):
    """Add an internal note."""
    form = NoteForm()
    return _apply(
        number,
        form,
        "note",
        lambda ticket: lifecycle.add_note(
            db.session, ticket=ticket, staff=current_staff(), text=form.text.data
        ),
        "Note added.",
    )


@bp.post("/tickets/<number>/time")
def log_time(number: str):
    """Log minutes of work."""
    form = TimeForm()
    return _apply(
        number,
        form,
        "time",
        lambda ticket: lifecycle.log_time(
            db.session,
            ticket=ticket,
            staff=current_staff(),
            minutes=form.minutes.data,
            note=form.note.data,
            expected_version=form.version.data,
        ),
        "Time logged.",
    )


@bp.post("/tickets/<number>/rate-approval")
def approve_rate(number: str):
    """Record that the customer approved the standard rate."""
    form = RateApprovalForm()
    return _apply(
        number,
        form,
        "rate",
        lambda ticket: lifecycle.record_rate_approval(
            db.session, ticket=ticket, staff=current_staff(), expected_version=form.version.data
        ),
        "The customer's approval of the standard rate is recorded.",
    )


@bp.post("/tickets/<number>/release-week")
def release_week(number: str):
    """Change the release week of a planned ticket."""
    form = ReleaseWeekForm()
    return _apply(
        number,
        form,
        "release_week",
        lambda ticket: lifecycle.set_release_week(
            db.session,
            ticket=ticket,
            staff=current_staff(),
            week=form.release_week.data,
            expected_version=form.version.data,
        ),
        "Release week saved.",
    )


def _stream_recording(recording_url: str | None):
    """Relay a Twilio recording to the browser; credentials stay on the server."""
    settings = current_app.config["SETTINGS"]
    try:
        upstream = open_recording(
            recording_url,
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            byte_range=request.headers.get("Range"),
        )
    except RecordingUnavailable as exc:
        return _error_page(str(exc), exc.status_code, title="Recording unavailable")
    kind = upstream.headers.get("Content-Type", "audio/mpeg")
    headers = {
        name: upstream.headers[name]
        for name in ("Content-Length", "Content-Range", "Accept-Ranges")
        if name in upstream.headers
    }
    headers["Cache-Control"] = "private, no-store"
    response = Response(
        stream_with_context(upstream.iter_content(64 * 1024)),
        status=upstream.status_code,
        mimetype=kind if kind.startswith("audio/") else "audio/mpeg",
        headers=headers,
        direct_passthrough=True,
    )
    response.call_on_close(upstream.close)
    return response


@bp.get("/recordings/<int:call_id>")
def call_recording(call_id: int):
    """Play the recording of a ticket's call."""
    call = db.session.get(TicketCall, call_id)
    if call is None:
        return _error_page("There is no such call.", 404, title="Recording unavailable")
    return _stream_recording(call.recording_url)


@bp.get("/callbacks")
def callbacks():
    """List office voicemails: those still to call back first."""
    waiting = db.session.scalars(
        select(CallbackRequest)
        .where(CallbackRequest.called_back_at.is_(None))
        .order_by(CallbackRequest.created_at.desc(), CallbackRequest.id.desc())
        .limit(200)
    ).all()
    done = db.session.scalars(
        select(CallbackRequest)
        .where(CallbackRequest.called_back_at.is_not(None))
        .options(joinedload(CallbackRequest.called_back_by))
        .order_by(CallbackRequest.called_back_at.desc(), CallbackRequest.id.desc())
        .limit(50)
    ).all()
    return render_template(
        "support/callbacks.html", waiting=waiting, done=done, form=CalledBackForm()
    )


@bp.post("/callbacks/<int:callback_id>/called-back")
def called_back(callback_id: int):
    """Record that a voicemail's caller was called back."""
    callback = db.session.get(CallbackRequest, callback_id)
    if callback is None:
        return _error_page("There is no such voicemail.", 404)
    try:
        lifecycle.mark_called_back(db.session, callback=callback, staff=current_staff())
    except lifecycle.LifecycleError as exc:
        flash(str(exc), "error")
    else:
        flash("Marked as called back.", "success")
    return redirect(url_for(".callbacks"), code=303)


@bp.get("/callbacks/<int:callback_id>/recording")
def callback_recording(callback_id: int):
    """Play an office voicemail."""
    callback = db.session.get(CallbackRequest, callback_id)
    if callback is None:
        return _error_page("There is no such voicemail.", 404, title="Recording unavailable")
    return _stream_recording(callback.recording_url)


def _render_settings(
    *,
    hours_form: HoursOverrideForm | None = None,
    announcement_form: AnnouncementForm | None = None,
    error: str | None = None,
    status: int = 200,
):
    mode = availability.get_hours_override(db.session)
    hours_form = hours_form or HoursOverrideForm(formdata=None, data={"mode": mode})
    active = availability.active_announcement(db.session)
    return (
        render_template(
            "support/settings.html",
            mode=mode,
            hours_form=hours_form,
            announcement_form=announcement_form or AnnouncementForm(formdata=None),
            end_form=EndAnnouncementForm(formdata=None),
            announcements=availability.recent_announcements(db.session),
            active_id=active.id if active else None,
            now=utcnow(),
            error=error,
        ),
        status,
    )


@bp.get("/settings")
def settings():
    """Show support's switches: the hours override and outage announcements."""
    return _render_settings()


@bp.post("/settings/hours")
def set_hours():
    """Force the lines open or closed, or follow the schedule."""
    form = HoursOverrideForm()
    if not form.validate():
        return _render_settings(hours_form=form, error=_first_error(form), status=400)
    availability.set_hours_override(db.session, mode=form.mode.data, set_by=current_staff().email)
    flash(f"Working hours: {HOURS_MODES[form.mode.data].lower()}.", "success")
    return redirect(url_for(".settings"), code=303)


@bp.post("/settings/announcements")
def post_announcement():
    """Post a known-outage announcement for emergency callers."""
    form = AnnouncementForm()
    if not form.validate():
        return _render_settings(announcement_form=form, error=_first_error(form), status=400)
    expires = form.expires_at.data
    if expires is not None:
        expires = expires.replace(tzinfo=local_zone()).astimezone(UTC)
    try:
        availability.create_announcement(
            db.session,
            text_nl=form.text_nl.data,
            text_en=form.text_en.data,
            expires_at=expires,
            created_by_id=current_staff().id,
        )
    except availability.AnnouncementError as exc:
        db.session.rollback()
        return _render_settings(announcement_form=form, error=f"{exc}.".capitalize(), status=400)
    flash("Announcement posted: emergency callers hear it before triage.", "success")
    return redirect(url_for(".settings"), code=303)


@bp.post("/settings/announcements/<int:announcement_id>/end")
def end_announcement(announcement_id: int):
    """End an announcement now."""
    if not EndAnnouncementForm().validate():
        abort(400)
    try:
        availability.end_announcement(db.session, announcement_id=announcement_id)
    except availability.AnnouncementError as exc:
        return _error_page(f"{exc}.".capitalize(), 404)
    flash("Announcement ended.", "success")
    return redirect(url_for(".settings"), code=303)
