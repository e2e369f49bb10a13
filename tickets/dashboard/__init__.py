"""The support dashboard at /support: one blueprint, a module per page.

`queue` the ticket list and its filters, `feed` the live alert of new urgent tickets, `ticket`
a ticket's page and its actions, `incidents` major incidents (list, page and actions),
`call_backs` the call-back queue of a ticket or incident and its button, `callbacks` the
office voicemails, `recordings` playing calls back, `settings` the hours override and
announcements, `helpdesk` the helpdesk events there, `oncall` the rota, `staff` and
`staff_account` the staff accounts and their tokens (admins), `testpages` an engineer's test
page, `messages` where paging stands and the pages that failed or wait, `statistics` the
figures of a period (and their CSV), `notices` what every page says while it holds (an open
incident, PIN checks paused, a helpdesk receiver switched off, paging or recordings that cannot
work), `display` how times and names are shown.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask_login import current_user
from flask_wtf import FlaskForm

from tickets.auth import harden, login_manager, protect_forms

# Templates and static files stay in tickets/, shared with the sign-in page.
bp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/support",
    template_folder="../templates",
    static_folder="../static",
    static_url_path="/static",
)


# A form's token is checked first, then who sent it; every page keeps out of caches and frames.
bp.before_request(protect_forms)
bp.after_request(harden)


@bp.before_request
def _require_sign_in():
    if request.endpoint == "dashboard.static":
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


def require_admin() -> None:
    """Stop anyone but an admin from changing line-wide switches, the rota or accounts (403)."""
    from tickets.auth import current_staff

    if current_staff().role != "admin":
        abort(403)


def error_page(message: str, status: int, title: str = "Not possible"):
    """Return the dashboard's error page with this message and status."""
    return render_template("support/error.html", title=title, message=message), status


def first_error(form: FlaskForm) -> str:
    """Return the first problem of a form that did not validate, with its field's label."""
    for field_name, problems in form.errors.items():
        label = getattr(getattr(form, field_name, None), "label", None)
        prefix = f"{label.text}: " if label is not None else ""
        return prefix + problems[0]
    return "The form was not filled in correctly."


# The page modules add their views to `bp`; they are imported last because they import it.
from tickets.dashboard import (  # noqa: E402
    call_backs,
    callbacks,
    display,
    feed,
    helpdesk,
    incidents,
    messages,
    notices,
    oncall,
    queue,
    recordings,
    settings,
    staff,
    staff_account,
    statistics,
    testpages,
    ticket,
)

__all__ = [
    "bp",
    "call_backs",
    "callbacks",
    "display",
    "error_page",
    "feed",
    "first_error",
    "helpdesk",
    "incidents",
    "messages",
    "notices",
    "require_admin",
    "oncall",
    "queue",
    "recordings",
    "settings",
    "staff",
    "staff_account",
    "statistics",
    "testpages",
    "ticket",
]
