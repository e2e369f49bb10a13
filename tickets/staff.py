"""Support-staff accounts, their passwords and API bearer tokens."""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import timedelta

from flask import g, jsonify, request
from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from tickets.db import db, utcnow
from tickets.models import STAFF_ROLES, ApiToken, StaffUser
from tickets.phones import to_e164

MIN_PASSWORD_LENGTH = 10
# API tokens expire: a forgotten script's token does not work for ever.
TOKEN_DAYS = 365
MAX_TOKEN_DAYS = 730


class StaffError(ValueError):
    """A staff account cannot be created or changed as asked."""


def find_staff(session: Session, email: str) -> StaffUser | None:
    """Return the staff account with this e-mail address (case-insensitive)."""
    return session.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))


def create_staff(
    session: Session,
    *,
    email: str,
    name: str,
    password: str,
    role: str = "agent",
    phone: str | None = None,
) -> StaffUser:
    """Create a staff account with a hashed password; with a phone number, an engineer."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise StaffError(f"{email!r} is not an e-mail address")
    if role not in STAFF_ROLES:
        raise StaffError(f"role must be one of {', '.join(STAFF_ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    number = engineer_phone(phone)
    if find_staff(session, email) is not None:
        raise StaffError(f"{email} already has an account")
    staff = StaffUser(
        email=email,
        name=name.strip() or email,
        role=role,
        password_hash=generate_password_hash(password),
        phone=number,
    )
    session.add(staff)
    session.commit()
    return staff


def engineer_phone(phone: str | None) -> str | None:
    """Return an engineer's phone number in E.164 (None for none), or raise StaffError."""
    if not phone:
        return None
    number = to_e164(phone)
    if number is None:
        raise StaffError(f"{phone!r} is not a phone number")
    return number


def set_phone(session: Session, *, staff: StaffUser, phone: str | None) -> StaffUser:
    """Give a staff account a phone number (an engineer the rota can ring), or take it away."""
    staff.phone = engineer_phone(phone)
    session.commit()
    return staff


def end_sessions(session: Session, *, staff: StaffUser) -> None:
    """End every dashboard session of `staff`, on every device, copies of cookies included."""
    session.execute(
        update(StaffUser)
        .where(StaffUser.id == staff.id)
        .values(session_epoch=StaffUser.session_epoch + 1)
    )
    session.commit()


def revoke_tokens(session: Session, *, staff: StaffUser) -> int:
    """Revoke every API token of `staff`; return how many were still valid."""
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.staff_id == staff.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    session.commit()
    return result.rowcount


def deactivate(session: Session, *, staff: StaffUser) -> None:
    """Close an account: no sign-in, its sessions and tokens end, the rota no longer rings it."""
    staff.active = False
    session.flush()
    revoke_tokens(session, staff=staff)
    end_sessions(session, staff=staff)


def check_password(staff: StaffUser, password: str) -> bool:
    """Return whether `password` is this account's password."""
    return check_password_hash(staff.password_hash, password)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, *, staff: StaffUser, days: int = TOKEN_DAYS) -> str:
    """Create a new API bearer token for `staff`, valid for `days`; only its hash is stored."""
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise StaffError(f"a token lives 1 to {MAX_TOKEN_DAYS} days")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        ApiToken(
            staff_id=staff.id,
            token_hash=_token_hash(token),
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
    )
    session.commit()
    return token


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
    if row is None or not row.staff.active:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    row.last_used_at = now
    session.commit()
    return row.staff


def token_required(view):
    """Answer 401 with a JSON error unless the request carries a valid bearer token."""

    @functools.wraps(view)
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
