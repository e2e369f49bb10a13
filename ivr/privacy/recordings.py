"""Delete call recordings at Twilio: an obligation written with the change, carried out after.

Forgetting a recording here (its URL on a call, a voicemail, a timeline event) and noting that
Twilio must delete it happen in one transaction; Twilio is asked afterwards, with no
transaction open. Deleted, or unknown to Twilio (404), the obligation is done; a server
error or an unreachable Twilio leaves it pending for the next purge.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import requests
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioException, TwilioRestException

from core.clock import utcnow
from core.settings import Settings
from ivr.messaging.channels import twilio_client
from ivr.models import RecordingDeletion

log = logging.getLogger(__name__)

RETENTION = "retention"
ERASE = "erase"
# Twilio unreachable this many times in a row: the rest wait for the next purge.
GIVE_UP_AFTER = 3
SID = re.compile(r"RE[0-9a-zA-Z]{32}")
SID_IN_URL = re.compile(r"/Recordings/(RE[0-9a-zA-Z]{32})")
GONE = "Twilio has no such recording"


def recording_sid(sid: str | None, url: str | None = None) -> str | None:
    """Return a recording's sid: the one Twilio sent, else the one in its URL."""
    if sid and SID.fullmatch(sid):
        return sid
    match = SID_IN_URL.search(url or "")
    return match.group(1) if match else None


def oblige_deletion(
    session: Session, sids: Iterable[str | None], *, reason: str, now: datetime
) -> int:
    """Note recordings Twilio must delete, once per sid, in the caller's transaction."""
    wanted = sorted({sid for sid in sids if sid})
    if not wanted:
        return 0
    rows = [
        {"recording_sid": sid, "reason": reason, "requested_at": now, "attempts": 0}
        for sid in wanted
    ]
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(RecordingDeletion).values(rows)
    session.execute(statement.on_conflict_do_nothing(index_elements=["recording_sid"]))
    return len(wanted)


@dataclass
class DeletionReport:
    """What asking Twilio to delete recordings came to."""

    deleted: int = 0
    already_gone: int = 0
    waiting: int = 0
    problems: list[str] = field(default_factory=list)

    def __add__(self, other: DeletionReport) -> DeletionReport:
        return DeletionReport(
            self.deleted + other.deleted,
            self.already_gone + other.already_gone,
            self.waiting + other.waiting,
            self.problems + [p for p in other.problems if p not in self.problems],
        )

    def summary(self) -> str:
        """Return one line for people: deleted, already gone, waiting and why."""
        line = (
            f"recordings at Twilio: {self.deleted} deleted, {self.already_gone} already gone, "
            f"{self.waiting} waiting"
        )
        if self.waiting and self.problems:
            line += f" ({'; '.join(self.problems[:3])}); the next purge tries again"
        return line


def _ask_twilio(client, sid: str) -> str | None:
    """Ask Twilio to delete one recording; return None, GONE, or what went wrong."""
    try:
        client.recordings(sid).delete()
    except TwilioRestException as exc:
        if exc.status == 404:
            return GONE
        return f"Twilio answered {exc.status} {exc.code or ''}".strip()
    except (TwilioException, requests.RequestException) as exc:
        return f"Twilio not reachable: {type(exc).__name__}"
    return None


def _record_attempt(session: Session, sid: str, problem: str | None, now: datetime) -> None:
    """Write down how asking Twilio went: done (deleted or gone), or still pending."""
    done = problem is None or problem == GONE
    session.execute(
        update(RecordingDeletion)
        .where(RecordingDeletion.recording_sid == sid)
        .values(
            attempts=RecordingDeletion.attempts + 1,
            last_error=None if problem is None else problem[:500],
            deleted_at=now if done else None,
        )
    )
    session.commit()


def pending_sids(session: Session, *, only: Iterable[str] | None = None) -> list[str]:
    """Return the recordings still to be deleted at Twilio (all, or those among `only`)."""
    query = select(RecordingDeletion.recording_sid).where(RecordingDeletion.deleted_at.is_(None))
    if only is not None:
        query = query.where(RecordingDeletion.recording_sid.in_(sorted(set(only))))
    sids = list(session.scalars(query.order_by(RecordingDeletion.requested_at)))
    session.commit()  # hold no transaction open while talking to Twilio
    return sids


def delete_at_twilio(
    session: Session, settings: Settings, *, only: Iterable[str] | None = None
) -> DeletionReport:
    """Ask Twilio to delete every pending recording (or those among `only`); report how it went."""
    report = DeletionReport()
    sids = pending_sids(session, only=only)
    if sids and not settings.twilio_account_sid:
        report.waiting, report.problems = len(sids), ["TWILIO_ACCOUNT_SID is not set"]
        return report
    client = twilio_client(settings) if sids else None
    failures_in_a_row = 0
    for position, sid in enumerate(sids):
        if failures_in_a_row >= GIVE_UP_AFTER:
            report.waiting += len(sids) - position
            break
        problem = _ask_twilio(client, sid)
        _record_attempt(session, sid, problem, utcnow())
        if problem is None:
            report.deleted += 1
        elif problem == GONE:
            report.already_gone += 1
        else:
            report.waiting += 1
            if problem not in report.problems:
                report.problems.append(problem)
            log.warning("recording %s not deleted at Twilio: %s", sid, problem)
        failures_in_a_row = 0 if problem in (None, GONE) else failures_in_a_row + 1
    return report
