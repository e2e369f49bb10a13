"""Support-staff accounts, their passwords and API bearer tokens."""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import datetime, timedelta

from flask import g, jsonify, request
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from core.clock import utcnow
from core.db import db, unit_of_work
from core.phones import to_e164
from tickets.audit import note_change
from tickets.models import STAFF_ROLES, ApiToken, StaffUser
from tickets.passwords import hash_password, password_matches

MIN_PASSWORD_LENGTH = 10
# The sign-in form takes no more, so a longer password could never be used.
MAX_PASSWORD_LENGTH = 200
MAX_NAME_LENGTH = 200
MAX_EMAIL_LENGTH = 320
# API tokens expire: a forgotten script's token does not work for ever.
TOKEN_DAYS = 365
MAX_TOKEN_DAYS = 730


class StaffError(ValueError):
    """A staff account cannot be created or changed as asked."""


def find_staff(session: Session, email: str) -> StaffUser | None:
    """Return the staff account with this e-mail address (case-insensitive)."""
    return session.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))


def clean_email(email: str) -> str:
    """Return the e-mail address as accounts store it (lower case), or raise StaffError."""
    email = (email or "").strip().lower()
    if (
        "@" not in email
        or len(email) > MAX_EMAIL_LENGTH
        or not email.isprintable()
        or any(c.isspace() for c in email)
    ):
        raise StaffError(f"{email!r} is not an e-mail address")
    return email


def clean_name(name: str, *, email: str) -> str:
    """Return the name shown in the dashboard and on tickets (the e-mail when empty)."""
    name = (name or "").strip()
    if len(name) > MAX_NAME_LENGTH:
        raise StaffError(f"a name has at most {MAX_NAME_LENGTH} characters")
    if not name.isprintable():
        raise StaffError("a name cannot hold control characters such as line breaks")
    return name or email


def check_role(role: str) -> str:
    """Return `role` if staff accounts can have it, else raise StaffError."""
    if role not in STAFF_ROLES:
        raise StaffError(f"role must be one of {', '.join(STAFF_ROLES)}")
    return role


def check_new_password(password: str) -> str:
    """Return `password` if it may become an account's password, else raise StaffError."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise StaffError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise StaffError(f"the password may have at most {MAX_PASSWORD_LENGTH} characters")
    return password


def generate_password() -> str:
    """Return a new random password of 20 characters, well above the minimum."""
    return secrets.token_urlsafe(15)


def engineer_phone(phone: str | None) -> str | None:
    """Return an engineer's phone number in E.164 (None for none), or raise StaffError."""
    if not phone or not phone.strip():
        return None
    number = to_e164(phone)
    if number is None:
        raise StaffError(f"{phone!r} is not a phone number")
    return number


def _audit(
    session: Session, actor: str | None, action: str, staff: StaffUser, extra: str = ""
) -> None:
    """Note a change to an account on the audit trail, written with the change itself."""
    detail = f"{staff.name} <{staff.email}>" + (f": {extra}" if extra else "")
    note_change(session, actor=actor, action=action, detail=detail)


def _write_account(session: Session, email: str) -> None:
    """Write an added or changed account; a taken e-mail address (a race) is a StaffError."""
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise StaffError(f"{email} already has an account") from None


def create_staff(
    session: Session,
    *,
    email: str,
    name: str,
    password: str,
    role: str = "agent",
    phone: str | None = None,
    actor: str | None = None,
) -> StaffUser:
    """Create a staff account with a hashed password; with a phone number, an engineer."""
    email = clean_email(email)
    name = clean_name(name, email=email)
    check_role(role)
    check_new_password(password)
    number = engineer_phone(phone)
    if find_staff(session, email) is not None:
        raise StaffError(f"{email} already has an account")
    staff = StaffUser(
        email=email,
        name=name,
        role=role,
        password_hash=hash_password(password),
        phone=number,
    )
    session.add(staff)
    _audit(session, actor, "staff_added", staff, f"{role}, phone {number or 'none'}")
    _write_account(session, email)
    return staff


def _keep_an_admin(session: Session, staff: StaffUser) -> None:
    """Refuse to take away `staff`'s admin rights if no other active admin would be left."""
    if not (staff.active and staff.role == "admin"):
        return
    # Locking every active admin row makes two admins demoting each other wait in turn.
    admins = session.scalars(
        select(StaffUser.id)
        .where(StaffUser.role == "admin", StaffUser.active.is_(True))
        .with_for_update()
    ).all()
    if not set(admins) - {staff.id}:
        refusal = f"{staff.email} is the last active admin; make another account an admin first"
        session.rollback()  # let go of the locks at once, also when the caller does not
        raise StaffError(refusal)


def update_staff(
    session: Session,
    *,
    staff: StaffUser,
    email: str,
    name: str,
    role: str,
    phone: str | None,
    actor: str | None,
) -> StaffUser:
    """Change an account's e-mail, name, role and phone; the trail says what changed."""
    email = clean_email(email)
    wanted = {
        "email": email,
        "name": clean_name(name, email=email),
        "role": check_role(role),
        "phone": engineer_phone(phone),
    }
    other = find_staff(session, email)
    if other is not None and other.id != staff.id:
        raise StaffError(f"{email} already has an account")
    if role != "admin":
        _keep_an_admin(session, staff)
    changes = [
        _change_words(field, getattr(staff, field), value)
        for field, value in wanted.items()
        if getattr(staff, field) != value
    ]
    for field, value in wanted.items():
        setattr(staff, field, value)
    if changes:
        _audit(session, actor, "staff_changed", staff, "; ".join(changes))
    _write_account(session, email)
    return staff


def _change_words(field: str, before: str | None, after: str | None) -> str:
    """Return a change of one account field as the audit trail says it."""
    return f"{field} {before or 'none'} -> {after or 'none'}"


def set_phone(
    session: Session, *, staff: StaffUser, phone: str | None, actor: str | None = None
) -> StaffUser:
    """Give a staff account a phone number (an engineer the rota can ring), or take it away."""
    number = engineer_phone(phone)
    if number != staff.phone:
        _audit(session, actor, "staff_changed", staff, _change_words("phone", staff.phone, number))
        staff.phone = number
    session.flush()
    return staff


def _raise_session_epoch(session: Session, staff: StaffUser) -> None:
    session.execute(
        update(StaffUser)
        .where(StaffUser.id == staff.id)
        .values(session_epoch=StaffUser.session_epoch + 1)
    )


def end_sessions(session: Session, *, staff: StaffUser) -> None:
    """End every dashboard session of `staff`, on every device, copies of cookies included."""
    _raise_session_epoch(session, staff)
    session.flush()


def set_password(
    session: Session, *, staff: StaffUser, password: str, actor: str | None
) -> StaffUser:
    """Give an account a new password; every session it had ends."""
    staff.password_hash = hash_password(check_new_password(password))
    _raise_session_epoch(session, staff)
    _audit(session, actor, "staff_password_reset", staff, "its sessions ended")
    session.flush()
    return staff


def _revoke_valid_tokens(session: Session, staff: StaffUser, *, token_id: int | None = None):
    """Revoke `staff`'s tokens that are not yet revoked (one, given its id); return how many."""
    statement = update(ApiToken).where(ApiToken.staff_id == staff.id, ApiToken.revoked_at.is_(None))
    if token_id is not None:
        statement = statement.where(ApiToken.id == token_id)
    return session.execute(statement.values(revoked_at=utcnow())).rowcount


def revoke_tokens(session: Session, *, staff: StaffUser, actor: str | None = None) -> int:
    """Revoke every API token of `staff`; return how many were still valid."""
    count = _revoke_valid_tokens(session, staff)
    _audit(session, actor, "staff_tokens_revoked", staff, f"{count} token(s)")
    session.flush()
    return count


def revoke_token(
    session: Session, *, staff: StaffUser, token_id: int, actor: str | None
) -> ApiToken | None:
    """Revoke one API token of `staff`; return it, or None when `staff` has no such token."""
    token = session.get(ApiToken, token_id)
    if token is None or token.staff_id != staff.id:
        return None
    if _revoke_valid_tokens(session, staff, token_id=token_id):
        _audit(session, actor, "staff_token_revoked", staff, _token_label(token))
        session.flush()
    return token


def deactivate(session: Session, *, staff: StaffUser, actor: str | None = None) -> None:
    """Close an account: no sign-in, its sessions, tokens and feed end, the rota no longer rings it.

    The last active admin cannot be closed: someone must be left to manage the desk.
    """
    if not staff.active:
        return
    _keep_an_admin(session, staff)
    staff.active = False
    # A reactivated account starts without its old feed URL, as without its old tokens.
    staff.feed_token_hash = None
    count = _revoke_valid_tokens(session, staff)
    _raise_session_epoch(session, staff)
    _audit(session, actor, "staff_deactivated", staff, f"{count} token(s) revoked")
    session.flush()


def reactivate(session: Session, *, staff: StaffUser, actor: str | None) -> StaffUser:
    """Open a closed account again: it signs in with its password; revoked tokens stay revoked."""
    if not staff.active:
        staff.active = True
        _audit(session, actor, "staff_reactivated", staff)
        session.flush()
    return staff


def check_password(staff: StaffUser, password: str) -> bool:
    """Return whether `password` is this account's password."""
    return password_matches(staff.password_hash, password)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _token_label(token: ApiToken) -> str:
    """Return how the audit trail names a token: its number and when it was made."""
    return f"token #{token.id} of {token.created_at:%Y-%m-%d %H:%M} UTC"


def issue_token(
    session: Session, *, staff: StaffUser, days: int = TOKEN_DAYS, actor: str | None = None
) -> str:
    """Create a new API bearer token for `staff`, valid for `days`; only its hash is stored."""
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise StaffError(f"a token lives 1 to {MAX_TOKEN_DAYS} days")
    if not staff.active:
        raise StaffError(f"{staff.email} is deactivated; reactivate it first")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = ApiToken(
        staff_id=staff.id,
        token_hash=_token_hash(token),
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    session.add(row)
    session.flush()
    _audit(session, actor, "staff_token_issued", staff, f"{_token_label(row)}, {days} days")
    session.flush()
    return token


def token_state(token: ApiToken, now: datetime) -> str:
    """Return whether a token works at `now`: 'valid', 'revoked' or 'expired'."""
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "valid"


def list_staff(session: Session) -> list[StaffUser]:
    """Return every staff account, active ones first, by name."""
    return list(
        session.scalars(select(StaffUser).order_by(StaffUser.active.desc(), StaffUser.name))
    )


def tokens_by_account(session: Session, *, staff: StaffUser | None = None) -> dict:
    """Return the API tokens of every account (or of `staff`), newest first, by account id."""
    query = select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    if staff is not None:
        query = query.where(ApiToken.staff_id == staff.id)
    tokens: dict[int, list[ApiToken]] = {}
    for token in session.scalars(query):
        tokens.setdefault(token.staff_id, []).append(token)
    return tokens


def staff_for_token(session: Session, token: str | None) -> StaffUser | None:
    """Return the active staff account a bearer token belongs to, if it is valid."""
    if not token or len(token) > 200:
        return None
    row = session.scalar(
        select(ApiToken)
        .where(ApiToken.token_hash == _token_hash(token), ApiToken.revoked_at.is_(None))
        .options(joinedload(ApiToken.staff))
    )
    now = utcnow()
    if row is None or not row.staff.active or token_state(row, now) != "valid":
        return None
    row.last_used_at = now
    session.flush()
    return row.staff


def token_required(view):
    """Answer 401 with a JSON error unless the request carries a valid bearer token.

    An API request is a unit of work: what it wrote (the token's last use, an action) is
    committed once the view has returned.
    """

    @functools.wraps(view)
    @unit_of_work
    def checked(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        staff = staff_for_token(db.session, token.strip()) if scheme.lower() == "bearer" else None
        if staff is None:
            response = jsonify(error="a valid bearer token is required")
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="support"'
            return response
        g.api_staff = staff
        return view(*args, **kwargs)

    return checked
