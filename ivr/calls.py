"""Keep the call log: one row per inbound call, its trail of choices and how it ended."""

from __future__ import annotations

from sqlalchemy import String, bindparam, case, event, func, inspect, select, update
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.db import insert_unless_present
from ivr import params
from ivr.models import CallLog

MAX_TRAIL = 4000


def _clip(value: str | None, limit: int = 64) -> str | None:
    """Cut an untrusted value to the column's size."""
    return None if value is None else value[:limit]


# Built once: nearly every webhook looks its call up, so skip building the query each time.
_CALL_BY_SID = select(CallLog).where(CallLog.sid == bindparam("sid"))
# The session's call log rows by CallSid (in `session.info`), so a webhook that asks for its
# call more than once (the status callback asks three times) queries once.
_KNOWN = "call_logs_by_sid"
# The CallSids whose log row this session inserted (`record_call_start`).
_NEW = "new_call_sids"


_CALLS = CallLog.__table__
_LONGER_TRAIL = case(
    (_CALLS.c.choices == "", bindparam("step", type_=String)),
    else_=_CALLS.c.choices + " " + bindparam("step", type_=String),
)
# The trail with the step appended, cut to its last MAX_TRAIL characters, as `note_step` does
# in Python; in SQL that both PostgreSQL and SQLite speak.
_APPEND_STEP = (
    update(_CALLS)
    .where(_CALLS.c.sid == bindparam("call_sid"))
    .values(
        choices=case(
            (
                func.length(_LONGER_TRAIL) > MAX_TRAIL,
                func.substr(_LONGER_TRAIL, func.length(_LONGER_TRAIL) - (MAX_TRAIL - 1)),
            ),
            else_=_LONGER_TRAIL,
        ),
        language=func.coalesce(bindparam("new_language", type_=String), _CALLS.c.language),
        updated_at=bindparam("now"),
    )
)


def _remember(session: Session, call: CallLog) -> CallLog:
    session.info.setdefault(_KNOWN, {})[call.sid] = call
    return call


def get_call(session: Session, sid: str) -> CallLog | None:
    """Return the call log row of a CallSid, if any.

    A row this session already holds is returned without asking again: querying would return
    that same object with the same values (the session keeps what it loaded), so only a row
    rolled back or deleted since (no longer persistent) is looked up anew.
    """
    known = session.info.get(_KNOWN, {}).get(sid)
    if known is not None and inspect(known).persistent:
        return known
    call = session.scalar(_CALL_BY_SID, {"sid": sid})
    return _remember(session, call) if call is not None else None


def record_call_start(
    session: Session,
    *,
    sid: str,
    line: str,
    from_number: str | None,
    to_number: str | None,
    language: str,
) -> CallLog:
    """Create the call's log row, or return it when Twilio retried the first webhook.

    Not committed here: the row is written with the webhook's next commit.
    """
    values = {
        "sid": _clip(sid),
        "line": line,
        "from_number": _clip(from_number),
        "caller_id": params.caller_id(from_number),
        "to_number": _clip(to_number),
        "language": language,
        "status": "in-progress",
    }
    call = insert_unless_present(session, CallLog, values, key="sid")
    if call is None:  # a retried webhook, or another worker's request for the same call
        return get_call(session, sid)
    session.info.setdefault(_NEW, set()).add(call.sid)
    return _remember(session, call)


@event.listens_for(Session, "after_rollback")
def _forget_new_calls(session: Session) -> None:
    """A rolled-back transaction took its new call log rows with it: they are new no longer."""
    session.info.pop(_NEW, None)


def is_new_call(session: Session, sid: str) -> bool:
    """Return whether this session wrote the call's first log row: its first webhook, once."""
    return sid in session.info.get(_NEW, ())


def has_ended(session: Session, sid: str) -> bool:
    """Return whether the call log already holds the end of this call."""
    call = get_call(session, sid)
    return call is not None and call.status in params.CALL_FINAL_STATUSES


def note_step(session: Session, *, sid: str, step: str, language: str | None = None) -> None:
    """Append a step (`menu:1`, `dial:finance:no-answer`) to the call's trail.

    Not committed here: the step is written with the caller's next commit (a webhook's own
    at its end, `ivr.flow.webhook`; a journal entry's replay). A row the session holds is
    changed in place; else one UPDATE appends the step, without loading the row first.
    """
    known = session.info.get(_KNOWN, {}).get(sid)
    if known is None or not inspect(known).persistent:
        values = {"call_sid": sid, "step": step, "new_language": language or None, "now": utcnow()}
        session.execute(_APPEND_STEP, values)
        return
    trail = f"{known.choices} {step}".strip()
    known.choices = trail[-MAX_TRAIL:]
    if language:
        known.language = language


def record_call_status(
    session: Session,
    *,
    sid: str,
    status: str,
    line: str,
    from_number: str | None = None,
    to_number: str | None = None,
    duration: str | None = None,
    sequence: str | None = None,
) -> CallLog:
    """Record a status callback; a final status is never overwritten by a later one.

    Not committed here: the caller commits (the status callback before it settles the ticket,
    a journal entry's replay with the entry).
    """
    call = get_call(session, sid)
    if call is None:
        call = record_call_start(
            session,
            sid=sid,
            line=line,
            from_number=from_number,
            to_number=to_number,
            language="nl",
        )
    if call.status in params.CALL_FINAL_STATUSES:
        return call
    status = params.call_status(status)
    number = params.whole_number(sequence)
    if number is not None and call.last_sequence is not None and number < call.last_sequence:
        return call
    if number is not None:
        call.last_sequence = number
    if status:
        call.status = status
    if status in params.CALL_FINAL_STATUSES:
        call.ended_at = utcnow()
        call.duration = params.whole_number(duration)
    return call


# How a call ended, as `ivr_calls_total` counts it. A call that reached the emergency flow and
# was put on an urgent ticket ends as its ticket call's outcome (`tickets.urgent.OUTCOME_RANK`).
EMERGENCY_WITHOUT_TICKET = ("not_entitled", "declined", "unidentified")
OFFICE_OUTCOMES = ("answered", "voicemail", "missed", "closed", "abandoned")
# Served from configuration while the database was away; a call that never reached us.
OUTAGE, FAILED = "outage", "failed"
# Statuses of an inbound call we never served: busy, or dropped before it was answered.
NOT_SERVED = ("busy", "failed", "no-answer", "canceled")
# Dial results in the trail (`dial:finance:completed`) that mean someone took the call.
_TAKEN = ("completed", "answered")


def call_outcome(status: str, trail: str, ticket_outcome: str | None) -> str:
    """Return how a call that ended went, from its final status, its trail and its ticket call.

    A plain function of plain values: the call log's trail (`menu:1 dial:finance:no-answer
    voicemail:finance`) says what an office caller got; an emergency caller on a ticket got
    what the ticket call's outcome says.
    """
    if ticket_outcome and ticket_outcome != "in_progress":
        return ticket_outcome
    steps = trail.split()
    if any(step.startswith("not_entitled:") for step in steps):
        return "not_entitled"
    if "unverified:declined" in steps:
        return "declined"
    if any(step.startswith(("pin:", "unverified:")) for step in steps):
        return "unidentified"
    dials = [step.rsplit(":", 1)[-1] for step in steps if step.startswith("dial:")]
    if any(result in _TAKEN for result in dials):
        return "answered"
    if any(step.startswith("voicemail:") and not step.endswith(":empty") for step in steps):
        return "voicemail"
    if dials:
        return "missed"
    if any(step.startswith("closed:") or step == "reception:closed" for step in steps):
        return "closed"
    if not steps and status in NOT_SERVED:
        return FAILED
    return "abandoned"
