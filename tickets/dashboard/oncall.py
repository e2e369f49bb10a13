"""The On call page: who is on call now and the coming two weeks, overrides, your own feed."""

from __future__ import annotations

from datetime import timedelta

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from core.clock import utcnow
from core.db import db, unit_of_work
from core.settings import current_settings
from tickets import rota
from tickets.auth import current_staff
from tickets.dashboard import bp, error_page, first_error, require_admin
from tickets.dashboard.display import local_zone
from tickets.models import StaffUser
from tickets.oncall.feeds import issue_feed_token, revoke_feed_token
from tickets.oncall.forms import FeedForm, OverrideForm, RemoveOverrideForm

AHEAD = timedelta(days=14)


def engineer_choices() -> dict[str, str]:
    """Return the staff an override can name: active accounts with a phone number."""
    staff = db.session.scalars(
        select(StaffUser)
        .where(StaffUser.active.is_(True), StaffUser.phone.is_not(None))
        .order_by(StaffUser.name)
    )
    return {str(member.id): f"{member.name} ({member.phone})" for member in staff}


def render_oncall(
    *,
    override_form: OverrideForm | None = None,
    feed_url: str | None = None,
    error: str | None = None,
    status: int = 200,
):
    """Render the On call page, keeping an override form sent back with an error."""
    now = utcnow()
    shifts = rota.shifts_between(db.session, now, now + AHEAD)
    override_form = override_form or OverrideForm(formdata=None)
    override_form.engineer.choices = engineer_choices()
    fallback = [engineer.name for engineer in current_settings().emergency.engineers]
    staff = current_staff()
    return (
        render_template(
            "support/oncall.html",
            now=now,
            levels=rota.on_call_at(db.session, now),
            rota=rota.effective_rota(shifts, now, now + AHEAD),
            overrides=rota.upcoming_overrides(db.session, now),
            override_form=override_form,
            remove_form=RemoveOverrideForm(formdata=None),
            feed_form=FeedForm(formdata=None),
            feed_url=feed_url,
            has_feed=staff.feed_token_hash is not None,
            is_admin=staff.role == "admin",
            fallback=fallback,
            error=error,
        ),
        status,
    )


@bp.get("/oncall")
def oncall():
    """Show who is on call now and in the coming two weeks."""
    return render_oncall()


@bp.post("/oncall/overrides")
@unit_of_work
def add_override():
    """Let an engineer cover a level for a while (admins)."""
    require_admin()
    form = OverrideForm()
    form.engineer.choices = engineer_choices()
    if not form.validate():
        return render_oncall(override_form=form, error=first_error(form), status=400)
    zone = local_zone()
    staff = db.session.get(StaffUser, int(form.engineer.data))
    starts_at = rota.read_moment(form.starts_at.data, zone)
    ends_at = rota.read_moment(form.ends_at.data, zone)
    if starts_at is None or ends_at is None:
        return render_oncall(override_form=form, error="Those dates are out of range.", status=400)
    try:
        shift = rota.add_override(
            db.session,
            level=int(form.level.data),
            staff=staff,
            starts_at=starts_at,
            ends_at=ends_at,
            added_by=current_staff().email,
        )
    except rota.RotaError as exc:
        db.session.rollback()
        return render_oncall(override_form=form, error=f"{exc}.".capitalize(), status=400)
    flash(f"{shift.staff.name} covers level {shift.level}.", "success")
    return redirect(url_for(".oncall"), code=303)


@bp.post("/oncall/overrides/<id:shift_id>/remove")
@unit_of_work
def remove_override(shift_id: int):
    """Remove an override (admins); the calendar holds again for its time."""
    require_admin()
    if not RemoveOverrideForm().validate():
        abort(400)
    if not rota.remove_override(db.session, shift_id=shift_id, removed_by=current_staff().email):
        return error_page("There is no such override.", 404)
    flash("Override removed.", "success")
    return redirect(url_for(".oncall"), code=303)


@bp.post("/oncall/feed")
@unit_of_work
def new_feed():
    """Make a new secret feed URL of your own shifts; it is shown once."""
    if not FeedForm().validate():
        abort(400)
    token = issue_feed_token(db.session, staff=current_staff())
    base = current_settings().public_url or request.host_url.rstrip("/")
    url = base + url_for("oncall_feed.engineer_feed", token=token)
    return render_oncall(feed_url=url)


@bp.post("/oncall/feed/end")
@unit_of_work
def end_feed():
    """End your feed: its URL stops working."""
    if not FeedForm().validate():
        abort(400)
    revoke_feed_token(db.session, staff=current_staff())
    flash("Your calendar feed is ended.", "success")
    return redirect(url_for(".oncall"), code=303)
