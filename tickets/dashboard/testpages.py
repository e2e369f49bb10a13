"""Test pages from the dashboard: an engineer proves their phone before a shift.

The sending itself is the telephone side's (`ivr.messaging.testpage`, the real channels); the
service hands it to the dashboard as `app.config["TEST_PAGE"]`, so the ticket side does not
import it.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for

from core.db import db, unit_of_work
from tickets.auth import current_staff
from tickets.dashboard import bp, error_page, require_admin
from tickets.forms import StaffActionForm
from tickets.models import StaffUser

BACK = {"oncall": ".oncall", "staff": ".staff_list", "account": ".staff_account"}


@bp.post("/staff/<id:staff_id>/test-page")
@unit_of_work
def send_test_page(staff_id: int):
    """Send a test SMS and e-mail to an engineer (yourself, or anyone as an admin)."""
    if current_staff().id != staff_id:
        require_admin()
    if not StaffActionForm().validate():
        abort(400)
    staff = db.session.get(StaffUser, staff_id)
    if staff is None or not staff.active:
        return error_page("There is no such active account.", 404)
    results = current_app.config["TEST_PAGE"](db.session, staff)
    for result in results:
        flash(result.describe(), "success" if result.accepted else "error")
    back = BACK.get(request.form.get("back", ""), ".oncall")
    target = url_for(back, staff_id=staff.id) if back == ".staff_account" else url_for(back)
    return redirect(target, code=303)
