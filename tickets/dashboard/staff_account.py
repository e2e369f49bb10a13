"""One staff account's page (admins): its details, access, password and API tokens."""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, flash, make_response, redirect, render_template, url_for
from flask_login import login_user
from flask_wtf import FlaskForm

from core.clock import utcnow
from core.db import db, unit_of_work
from tickets import staff as accounts
from tickets.audit import recent_changes
from tickets.auth import StaffLogin, current_staff
from tickets.dashboard import bp, error_page, first_error, require_admin
from tickets.forms import PasswordResetForm, StaffAccountForm, StaffActionForm, TokenForm
from tickets.models import StaffUser


@dataclass(frozen=True)
class Secret:
    """A password or token the page shows once: it is not stored anywhere readable."""

    kind: str  # "password" or "token"
    value: str


def refusal(error: accounts.StaffError) -> str:
    """Return a service's refusal as the page says it."""
    return f"Nothing was changed: {error}."


def account_for_admin(staff_id: int) -> StaffUser:
    """Return the account an admin is looking at; 403 for agents, 404 when there is none."""
    require_admin()
    account = db.session.get(StaffUser, staff_id)
    if account is None:
        abort(make_response(error_page("There is no such staff account.", 404)))
    return account


def check_button() -> None:
    """Refuse a button's post that does not validate (400)."""
    if not StaffActionForm().validate():
        abort(400)


def render_account(
    account: StaffUser,
    *,
    account_form: StaffAccountForm | None = None,
    password_form: PasswordResetForm | None = None,
    token_form: TokenForm | None = None,
    secret: Secret | None = None,
    error: str | None = None,
    status: int = 200,
):
    """Render an account's page, keeping a form that was sent back with an error."""
    details = {
        "name": account.name,
        "email": account.email,
        "role": account.role,
        "phone": account.phone or "",
    }
    now = utcnow()
    tokens = accounts.tokens_by_account(db.session, staff=account).get(account.id, [])
    states = [(token, accounts.token_state(token, now)) for token in tokens]
    return (
        render_template(
            "support/staff_account.html",
            account=account,
            tokens=states,
            any_valid=any(state == "valid" for _, state in states),
            account_form=account_form or StaffAccountForm(formdata=None, data=details),
            password_form=password_form or PasswordResetForm(formdata=None),
            token_form=token_form or TokenForm(formdata=None),
            button_form=StaffActionForm(formdata=None),
            changes=recent_changes(
                db.session, limit=20, action_prefix="staff_", mentioning=f"<{account.email}>"
            ),
            is_self=account.id == current_staff().id,
            secret=secret,
            min_password=accounts.MIN_PASSWORD_LENGTH,
            error=error,
        ),
        status,
    )


def form_problem(account: StaffUser, key: str, form: FlaskForm):
    """Return the page with the form's first problem (400), or None when the form is right."""
    if form.validate():
        return None
    return render_account(account, **{key: form}, error=first_error(form), status=400)


def refused(account: StaffUser, error: accounts.StaffError, **forms: FlaskForm):
    """Undo a refused change and show the page with the reason (400)."""
    db.session.rollback()
    return render_account(account, **forms, error=refusal(error), status=400)


def back_to(account: StaffUser, message: str):
    """Flash `message` and show the account's page again."""
    flash(message, "success")
    return redirect(url_for(".staff_account", staff_id=account.id), code=303)


@bp.get("/staff/<id:staff_id>")
def staff_account(staff_id: int):
    """Show one account: details, access, password and API tokens."""
    return render_account(account_for_admin(staff_id))


@bp.post("/staff/<id:staff_id>")
@unit_of_work
def edit_staff(staff_id: int):
    """Change an account's name, e-mail address, role or phone number."""
    account = account_for_admin(staff_id)
    form = StaffAccountForm()
    if problem := form_problem(account, "account_form", form):
        return problem
    try:
        accounts.update_staff(
            db.session,
            staff=account,
            email=form.email.data,
            name=form.name.data,
            role=form.role.data,
            phone=form.phone.data,
            actor=current_staff().email,
        )
    except accounts.StaffError as exc:
        return refused(account, exc, account_form=form)
    return back_to(account, f"Saved the account of {account.name}.")


@bp.post("/staff/<id:staff_id>/deactivate")
@unit_of_work
def deactivate_staff(staff_id: int):
    """Close an account: no sign-in, its sessions and tokens end, the rota no longer rings it."""
    account = account_for_admin(staff_id)
    check_button()
    try:
        accounts.deactivate(db.session, staff=account, actor=current_staff().email)
    except accounts.StaffError as exc:
        return refused(account, exc)
    return back_to(
        account, f"{account.name} is deactivated: signed out everywhere, API tokens revoked."
    )


@bp.post("/staff/<id:staff_id>/reactivate")
@unit_of_work
def reactivate_staff(staff_id: int):
    """Open a closed account again; revoked tokens stay revoked."""
    account = account_for_admin(staff_id)
    check_button()
    accounts.reactivate(db.session, staff=account, actor=current_staff().email)
    return back_to(account, f"{account.name} can sign in again with their password.")


@bp.post("/staff/<id:staff_id>/password")
@unit_of_work
def reset_password(staff_id: int):
    """Give an account a new password, typed or generated; its sessions end."""
    account = account_for_admin(staff_id)
    form = PasswordResetForm()
    if problem := form_problem(account, "password_form", form):
        return problem
    password = form.password.data or accounts.generate_password()
    try:
        accounts.set_password(
            db.session, staff=account, password=password, actor=current_staff().email
        )
    except accounts.StaffError as exc:
        return refused(account, exc, password_form=form)
    if account.id == current_staff().id:
        login_user(StaffLogin(account))  # your other sessions end; this one goes on
    if form.password.data:
        return back_to(account, f"New password set for {account.name}; their sessions ended.")
    flash(f"New password generated for {account.name}; their sessions ended.", "success")
    return render_account(account, secret=Secret("password", password))


@bp.post("/staff/<id:staff_id>/tokens")
@unit_of_work
def issue_staff_token(staff_id: int):
    """Issue a new API bearer token for an account; it is shown once."""
    account = account_for_admin(staff_id)
    form = TokenForm()
    if problem := form_problem(account, "token_form", form):
        return problem
    try:
        token = accounts.issue_token(
            db.session, staff=account, days=form.days.data, actor=current_staff().email
        )
    except accounts.StaffError as exc:
        return refused(account, exc, token_form=form)
    flash(f"New API token for {account.name}, valid for {form.days.data} days.", "success")
    return render_account(account, secret=Secret("token", token))


@bp.post("/staff/<id:staff_id>/tokens/revoke")
@unit_of_work
def revoke_staff_tokens(staff_id: int):
    """Revoke every API token of an account."""
    account = account_for_admin(staff_id)
    check_button()
    count = accounts.revoke_tokens(db.session, staff=account, actor=current_staff().email)
    return back_to(account, f"Revoked {count} API token(s) of {account.name}.")


@bp.post("/staff/<id:staff_id>/tokens/<id:token_id>/revoke")
@unit_of_work
def revoke_staff_token(staff_id: int, token_id: int):
    """Revoke one API token of an account."""
    account = account_for_admin(staff_id)
    check_button()
    token = accounts.revoke_token(
        db.session, staff=account, token_id=token_id, actor=current_staff().email
    )
    if token is None:
        return error_page("This account has no such API token.", 404)
    return back_to(account, f"Revoked API token #{token.id} of {account.name}.")
