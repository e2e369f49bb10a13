"""Each engineer's secret, revocable calendar-feed URL token; only its hash is stored."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets.models import StaffUser

MAX_TOKEN = 200


def _hash(token: str) -> str:
    return hashlib.sha256(f"feed:{token}".encode()).hexdigest()


def issue_feed_token(session: Session, *, staff: StaffUser) -> str:
    """Give `staff` a new feed token, which ends the old one; return it once."""
    token = secrets.token_urlsafe(32)
    staff.feed_token_hash = _hash(token)
    session.flush()
    return token


def revoke_feed_token(session: Session, *, staff: StaffUser) -> None:
    """End `staff`'s feed: its URL stops working."""
    staff.feed_token_hash = None
    session.flush()


def staff_for_feed_token(session: Session, token: str | None) -> StaffUser | None:
    """Return the active staff member whose feed this token opens, if any."""
    if not token or len(token) > MAX_TOKEN:
        return None
    staff = session.scalar(select(StaffUser).where(StaffUser.feed_token_hash == _hash(token)))
    return staff if staff is not None and staff.active else None
