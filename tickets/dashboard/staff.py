"""The Staff page (admins): every account with its role, phone, access and tokens; adding one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import flash, render_template

from core.clock import utcnow
from core.db import db, unit_of_work
from tickets import staff as accounts
from tickets.audit import recent_changes
from tickets.auth import current_staff
from tickets.dashboard import bp, first_error, require_admin
from tickets.dashboard.staff_account import Secret, back_to, refusal, render_account
from tickets.forms import NewStaffForm, StaffActionForm
from tickets.models import ApiToken
from tickets.paging_state import latest_test_pages


@dataclass(frozen=True)
class TokenSummary:
    """An account's API tokens at a glance: how many work, how many in all, the last use."""

    valid: int
    total: int
    last_used: datetime | None


def summarise_tokens(tokens: list[ApiToken], now: datetime) -> TokenSummary:
    """Return the summary of an account's tokens at `now`."""
    used = [token.last_used_at for token in tokens if token.last_used_at is not None]
    return TokenSummary(
        valid=sum(accounts.token_state(token, now) == "valid" for token in tokens),
        total=len(tokens),
        last_used=max(used, default=None),
    )


def render_staff_list(
    *, form: NewStaffForm | None = None, error: str | None = None, status: int = 200
):
    """Render the Staff page, keeping an add form that was sent back with an error."""
    now = utcnow()
    staff = accounts.list_staff(db.session)
    tokens = accounts.tokens_by_account(db.session)
    return (
        render_template(
            "support/staff.html",
            accounts=staff,
            summaries={a.id: summarise_tokens(tokens.get(a.id, []), now) for a in staff},
            form=form or NewStaffForm(formdata=None),
            changes=recent_changes(db.session, action_prefix="staff_"),
            me=current_staff(),
            tests=latest_test_pages(db.session, [account.id for account in staff]),
            test_form=StaffActionForm(formdata=None),
            min_password=accounts.MIN_PASSWORD_LENGTH,
            error=error,
        ),
        status,
    )


@bp.get("/staff")
def staff_list():
    """Show every staff account (admins)."""
    require_admin()
    return render_staff_list()


@bp.post("/staff")
@unit_of_work
def add_staff():
    """Add a staff account with the admin's password or a generated one, shown once."""
    require_admin()
    form = NewStaffForm()
    if not form.validate():
        return render_staff_list(form=form, error=first_error(form), status=400)
    password = form.password.data or accounts.generate_password()
    try:
        account = accounts.create_staff(
            db.session,
            email=form.email.data,
            name=form.name.data,
            password=password,
            role=form.role.data,
            phone=form.phone.data,
            actor=current_staff().email,
        )
    except accounts.StaffError as exc:
        db.session.rollback()
        return render_staff_list(form=form, error=refusal(exc), status=400)
    if form.password.data:
        return back_to(account, f"Added {account.role} account {account.email}.")
    flash(f"Added {account.role} account {account.email}.", "success")
    return render_account(account, secret=Secret("password", password))
