"""Line-wide switches (admins): the working-hours override, announcements, the helpdesk events
(`tickets.dashboard.helpdesk`), and their audit trail."""

from __future__ import annotations

from datetime import UTC

from flask import abort, flash, redirect, render_template, url_for

from core.clock import utcnow
from core.db import db
from tickets import availability
from tickets.audit import personal_data_trail, recent_changes
from tickets.auth import current_staff
from tickets.dashboard import bp, error_page, first_error, require_admin
from tickets.dashboard.display import local_zone
from tickets.dashboard.helpdesk import helpdesk_section
from tickets.forms import AnnouncementForm, EndAnnouncementForm, HoursOverrideForm
from tickets.labels import HOURS_MODES


def render_settings(
    *,
    hours_form: HoursOverrideForm | None = None,
    announcement_form: AnnouncementForm | None = None,
    error: str | None = None,
    status: int = 200,
):
    """Render the settings page, keeping forms that were sent back with an error."""
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
            changes=recent_changes(db.session),
            personal_data=personal_data_trail(db.session, limit=50),
            **helpdesk_section(),
            is_admin=current_staff().role == "admin",
            now=utcnow(),
            error=error,
        ),
        status,
    )


@bp.get("/settings")
def settings():
    """Show support's switches: the hours override and outage announcements."""
    return render_settings()


@bp.post("/settings/hours")
def set_hours():
    """Force the lines open or closed, or follow the schedule (admins)."""
    require_admin()
    form = HoursOverrideForm()
    if not form.validate():
        return render_settings(hours_form=form, error=first_error(form), status=400)
    availability.set_hours_override(db.session, mode=form.mode.data, set_by=current_staff().email)
    flash(f"Working hours: {HOURS_MODES[form.mode.data].lower()}.", "success")
    return redirect(url_for(".settings"), code=303)


@bp.post("/settings/announcements")
def post_announcement():
    """Post a known-outage announcement for emergency callers (admins)."""
    require_admin()
    form = AnnouncementForm()
    if not form.validate():
        return render_settings(announcement_form=form, error=first_error(form), status=400)
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
            actor=current_staff().email,
        )
    except availability.AnnouncementError as exc:
        db.session.rollback()
        return render_settings(announcement_form=form, error=f"{exc}.".capitalize(), status=400)
    flash("Announcement posted: emergency callers hear it before triage.", "success")
    return redirect(url_for(".settings"), code=303)


@bp.post("/settings/announcements/<id:announcement_id>/end")
def end_announcement(announcement_id: int):
    """End an announcement now (admins)."""
    require_admin()
    if not EndAnnouncementForm().validate():
        abort(400)
    try:
        availability.end_announcement(
            db.session, announcement_id=announcement_id, actor=current_staff().email
        )
    except availability.AnnouncementError as exc:
        return error_page(f"{exc}.".capitalize(), 404)
    flash("Announcement ended.", "success")
    return redirect(url_for(".settings"), code=303)
