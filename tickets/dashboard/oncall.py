"""The On call page: who is on call now and the coming two weeks, overrides, your own feed.

It also warns about the coming week's shifts that would not reach their engineer: no phone
number on the account, or a last test page that failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
from tickets.forms import StaffActionForm
from tickets.models import OnCallShift, OutboxMessage, StaffUser
from tickets.oncall.feeds import issue_feed_token, revoke_feed_token
from tickets.oncall.forms import FeedForm, OverrideForm, RemoveOverrideForm
from tickets.paging_state import latest_test_pages, test_page_failed

AHEAD = timedelta(days=14)
WEEK = timedelta(days=7)


@dataclass
class WeekEngineer:
    """An engineer with shifts in the coming week, and whether a page would reach them."""

    staff: StaffUser
    shifts: list[OnCallShift] = field(default_factory=list)
    tests: dict[str, OutboxMessage] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        """Say why the line or a page might not reach this engineer; empty when nothing does."""
        found = []
        if not self.staff.active:
            found.append("the account is deactivated: the rota skips it")
        if not self.staff.phone:
            found.append("no phone number: the line cannot ring them and no page SMS reaches them")
        if test_page_failed(self.tests):
            failed = [row for row in self.tests.values() if row.status == "failed"]
            why = "; ".join(f"{row.channel}: {row.last_error or 'failed'}" for row in failed)
            found.append(f"the last test page failed ({why})")
        return found


def week_engineers(now) -> list[WeekEngineer]:
    """Return the engineers with a shift in the coming week, with their latest test pages."""
    by_staff: dict[int, WeekEngineer] = {}
    for shift in rota.shifts_between(db.session, now, now + WEEK):
        by_staff.setdefault(shift.staff_id, WeekEngineer(shift.staff)).shifts.append(shift)
    tests = latest_test_pages(db.session, list(by_staff))
    for staff_id, engineer in by_staff.items():
        engineer.tests = tests.get(staff_id, {})
    return sorted(by_staff.values(), key=lambda engineer: engineer.staff.name)


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
            engineers=week_engineers(now),
            my_tests=latest_test_pages(db.session, [staff.id]).get(staff.id, {}),
            me=staff,
            test_form=StaffActionForm(formdata=None),
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
