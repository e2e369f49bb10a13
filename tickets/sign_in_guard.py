"""Stop sign-in guessing and floods: failed sign-ins counted in the database, per source.

Failed sign-ins are rows (`login_failures`), so every instance of the service counts the same
ones. Two limits, each over the last LOCK_MINUTES:

- MAX_FAILED_LOGINS for one e-mail address from one source lock that address for that source
  only, so nobody can keep a named person out from elsewhere;
- MAX_FAILED_LOGINS_PER_SOURCE from one source, whatever the addresses, lock that source out
  of sign-in altogether: a flood of made-up addresses stops there.

A locked attempt is refused before any password is hashed and adds no row. An IPv6 source
counts by its /64 (one subscriber's network), so rotating addresses within it gains nothing.
Rows older than the window count for nothing and are deleted: a source's own with its next
failure, all of them by the daily retention purge.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tickets.models import LoginFailure

MAX_FAILED_LOGINS = 5
MAX_FAILED_LOGINS_PER_SOURCE = 20
LOCK_MINUTES = 15
SOURCE_LENGTH = 64


class SourceLocked(Exception):
    """Too many sign-ins from this source failed lately: it is refused without a hearing."""


def source_key(address: str) -> str:
    """Return what failures are counted by for a client address: itself, or its IPv6 /64."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:SOURCE_LENGTH]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _window_start(now: datetime) -> datetime:
    return now - timedelta(minutes=LOCK_MINUTES)


def _at_least(session: Session, limit: int, *where) -> bool:
    """Return whether at least `limit` recent failures match, counting no further than that."""
    recent = select(LoginFailure.id).where(*where).limit(limit).subquery()
    return session.scalar(select(func.count()).select_from(recent)) >= limit


def source_locked(session: Session, *, source: str, now: datetime) -> bool:
    """Return whether `source` has failed MAX_FAILED_LOGINS_PER_SOURCE times within the window."""
    return _at_least(
        session,
        MAX_FAILED_LOGINS_PER_SOURCE,
        LoginFailure.source == source,
        LoginFailure.at > _window_start(now),
    )


def address_locked(session: Session, *, email: str, source: str, now: datetime) -> bool:
    """Return whether `email` failed MAX_FAILED_LOGINS times from `source` within the window."""
    return _at_least(
        session,
        MAX_FAILED_LOGINS,
        LoginFailure.email == email,
        LoginFailure.source == source,
        LoginFailure.at > _window_start(now),
    )


def record_failure(session: Session, *, email: str, source: str, now: datetime) -> None:
    """Count a failed sign-in, and forget this source's failures that no longer count."""
    session.execute(
        delete(LoginFailure).where(
            LoginFailure.source == source, LoginFailure.at <= _window_start(now)
        )
    )
    session.add(LoginFailure(email=email, source=source[:SOURCE_LENGTH], at=now))
    session.flush()


def forget_failures(session: Session, *, email: str, source: str) -> None:
    """Forget the failures of `email` from `source`: it has just signed in."""
    session.execute(
        delete(LoginFailure).where(LoginFailure.email == email, LoginFailure.source == source)
    )
    session.flush()


def purge_failures(session: Session, *, now: datetime) -> int:
    """Delete every failure older than the window; return how many."""
    result = session.execute(delete(LoginFailure).where(LoginFailure.at <= _window_start(now)))
    session.flush()
    return result.rowcount or 0
