"""Write each kind of journalled event to the database: call log, urgent tickets, call-backs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from core.clock import utcnow
from core.settings import Settings
from ivr import calls, params
from ivr.flow import engineer_name
from ivr.hours import is_open
from ivr.lines import EMERGENCY, OFFICE
from ivr.messaging.aftercall import after_call
from ivr.messaging.policy import paging_policy
from ivr.models import CallLog
from ivr.office.menu import RECEPTION
from ivr.outage.journal import Entry
from tickets import incidents
from tickets.availability import get_hours_override
from tickets.callbacks import record_callback_request
from tickets.directory import find_contact_by_phone
from tickets.models import REASONS, TicketCall
from tickets.urgent import opening, outcomes, timeline

log = logging.getLogger(__name__)


class Deferred(Exception):
    """Raised by a replayer whose entry must wait, e.g. for the call it belongs to."""


# How long an event of an emergency call waits for the call's own entry (which another
# instance may still hold in its journal) before it is applied without a ticket.
WAIT_FOR_CALL = timedelta(hours=1)


def _text(value: object, limit: int = 64) -> str | None:
    """Return a journalled value as bounded text, None when empty."""
    if value is None or value == "":
        return None
    return str(value)[:limit]


def _line(entry: Entry) -> str:
    """Return the line a journal entry belongs to."""
    return EMERGENCY if entry.data.get("line") == EMERGENCY else OFFICE


def _when(settings: Settings, at: datetime) -> str:
    """Return a moment in the service's time zone, for timelines."""
    return at.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M:%S")


def _ticket_call(session: Session, entry: Entry) -> TicketCall | None:
    """Return the ticket call an emergency event belongs to; wait a while for it to appear."""
    call = opening.find_ticket_call(session, entry.call_sid)
    if call is None and entry.data.get("ticket"):
        ticket = opening.find_ticket(session, _text(entry.data["ticket"], 12))
        if ticket is not None:
            call = opening.find_call_on_ticket(session, ticket=ticket, sid=entry.call_sid)
    if call is None and utcnow() - entry.at < WAIT_FOR_CALL:
        raise Deferred(f"no ticket yet for call {entry.call_sid}")
    return call


def replay_call(settings: Settings, session: Session, entry: Entry) -> str:
    """Record a call served during the outage; an emergency call gets its urgent ticket."""
    log_row = _call_log_row(settings, session, entry)
    calls.note_step(session, sid=entry.call_sid, step="outage:journal")
    if _line(entry) != EMERGENCY:
        return f"office call {entry.call_sid} served during the outage, now in the call log"
    note = (
        f"the database was unreachable during this call ({_when(settings, entry.at)}); "
        "the caller was put through to the engineers without being verified"
    )
    existing = opening.find_ticket_call(session, entry.call_sid)
    if existing is not None:
        timeline.note_from_journal(session, call=existing, detail=note, at=entry.at)
        return f"call {entry.call_sid} on urgent ticket {existing.ticket.number}: outage replayed"
    call = _open_unverified_ticket(settings, session, entry, note)
    if params.is_final(log_row.status):  # its end was replayed first (another journal)
        outcomes.settle_ticket_call(
            session,
            sid=entry.call_sid,
            duration=log_row.duration,
            now=log_row.ended_at,
            then=after_call(settings, paging_policy(settings)),
        )
    return (
        f"urgent ticket {call.ticket.number} from the outage journal for call "
        f"{entry.call_sid} (caller not verified)"
    )


def _call_log_row(settings: Settings, session: Session, entry: Entry) -> CallLog:
    """Return the call's row in the call log, written from the journal when it has none."""
    log_row = calls.get_call(session, entry.call_sid)
    if log_row is not None:
        return log_row
    data = entry.data
    log_row = calls.record_call_start(
        session,
        sid=entry.call_sid,
        line=_line(entry),
        from_number=_text(data.get("from")),
        to_number=_text(data.get("to")),
        language=_text(data.get("language"), 5) or settings.default_language,
    )
    log_row.from_journal = True
    log_row.started_at = entry.at
    session.flush()
    return log_row


def _open_unverified_ticket(
    settings: Settings, session: Session, entry: Entry, note: str
) -> TicketCall:
    """Open the urgent ticket of an emergency call whose caller could not be verified."""
    caller = params.caller_id(_text(entry.data.get("caller")))
    contact = find_contact_by_phone(session, caller)
    if contact is not None:
        note += (
            f"; the caller ID belongs to {contact.name} ({contact.role}) "
            f"of {contact.organization.name}"
        )
    else:
        note += "; the caller ID is unknown or withheld"
    schedule = settings.schedule_for(settings.emergency.schedule)
    in_hours = is_open(
        schedule,
        entry.at,
        zone=settings.zone,
        country=settings.holiday_country,
        override=get_hours_override(session),
    )
    return opening.open_ticket(
        session,
        arrival=opening.journalled(note=note),
        call_sid=entry.call_sid,
        line=EMERGENCY,
        caller=caller or _text(entry.data.get("from")),
        contact=contact,
        in_hours=in_hours,
        repeat_window_minutes=settings.emergency.repeat_window_minutes,
        at=entry.at,
    )


def replay_reason(settings: Settings, session: Session, entry: Entry) -> str:
    """Record the triage key a caller pressed during the outage."""
    reason = entry.data.get("reason")
    call = _ticket_call(session, entry)
    if call is None or reason not in REASONS:
        return f"reason of call {entry.call_sid}: nothing to record"
    timeline.record_reason(session, call=call, reason=reason, now=entry.at)
    if reason == "outage":
        incidents.note_outage_report(session, ticket=call.ticket, now=entry.at)
    return f"reason {reason} on urgent ticket {call.ticket.number}"


def replay_description(settings: Settings, session: Session, entry: Entry) -> str:
    """Record the description a caller spoke during the outage."""
    text = params.speech(_text(entry.data.get("text"), 1000))
    call = _ticket_call(session, entry)
    if call is None or not text:
        return f"description of call {entry.call_sid}: nothing to record"
    timeline.record_description(session, call=call, text=text, now=entry.at)
    return f"description on urgent ticket {call.ticket.number}"


def replay_dial(settings: Settings, session: Session, entry: Entry) -> str:
    """Record what ringing during the outage came to."""
    status = (_text(entry.data.get("status"), 20) or "").lower()
    if _line(entry) != EMERGENCY:
        calls.note_step(session, sid=entry.call_sid, step=f"outage:dial:{status}")
        return f"dial {status} of office call {entry.call_sid}"
    call = _ticket_call(session, entry)
    if call is None:
        return f"dial of call {entry.call_sid}: no ticket to record it on"
    if status == "completed" or str(entry.data.get("bridged")).lower() == "true":
        outcomes.record_dial_outcome(session, call=call, outcome="answered")
    elif status == "canceled":
        outcomes.record_dial_outcome(session, call=call, outcome="abandoned_while_ringing")
    else:
        outcomes.record_engineers_unavailable(session, call=call, now=entry.at)
    return f"dial {status} on urgent ticket {call.ticket.number}"


def replay_answered(settings: Settings, session: Session, entry: Entry) -> str:
    """Record the engineer who accepted a call during the outage."""
    call = _ticket_call(session, entry)
    engineer = engineer_name(settings, session, _text(entry.data.get("engineer")))
    if call is None:
        return f"{engineer} answered call {entry.call_sid}: no ticket to record it on"
    timeline.record_engineer_response(
        session, ticket=call.ticket, call=call, engineer=engineer, accepted=True, now=entry.at
    )
    return f"{engineer} answered urgent ticket {call.ticket.number}"


def _recording(entry: Entry) -> tuple[str | None, str | None, int | None]:
    """Return the clean URL, sid and duration of a journalled recording."""
    data = entry.data
    return (
        params.recording_url(_text(data.get("url"), 500)),
        params.sid(_text(data.get("recording_sid"))),
        params.whole_number(_text(data.get("duration"), 10)),
    )


def replay_recording(settings: Settings, session: Session, entry: Entry) -> str:
    """Store the recording of a conversation held during the outage."""
    url, sid, duration = _recording(entry)
    status = (_text(entry.data.get("status"), 20) or "completed").lower()
    if _line(entry) != EMERGENCY or url is None or status != "completed":
        return f"recording of call {entry.call_sid}: nothing to store"
    call = _ticket_call(session, entry)
    if call is None:
        return f"recording of call {entry.call_sid}: no ticket to store it on"
    timeline.record_call_recording(
        session, call=call, recording_url=url, recording_sid=sid, duration=duration, now=entry.at
    )
    return f"recording on urgent ticket {call.ticket.number}"


def replay_voicemail(settings: Settings, session: Session, entry: Entry) -> str:
    """Store a voicemail left during the outage: on the urgent ticket, or for call-back."""
    url, sid, duration = _recording(entry)
    if url is None:
        return f"voicemail of call {entry.call_sid}: no usable recording"
    if _line(entry) == EMERGENCY:
        call = _ticket_call(session, entry)
        if call is None:
            return f"voicemail of call {entry.call_sid}: no ticket to store it on"
        outcomes.record_voicemail(
            session,
            call=call,
            recording_url=url,
            recording_sid=sid,
            duration=duration,
            now=entry.at,
        )
        return f"voicemail on urgent ticket {call.ticket.number}"
    department = _text(entry.data.get("department"))
    if department not in settings.office.departments:
        department = RECEPTION
    log_row = calls.get_call(session, entry.call_sid)
    request = record_callback_request(
        session,
        call_sid=entry.call_sid,
        caller=log_row.caller_id if log_row is not None else None,
        department=department,
        recording_url=url,
        recording_sid=sid,
        recording_duration=duration,
        in_hours=entry.data.get("hours") != "out",
        at=entry.at,
    )
    return f"office voicemail for {request.department} kept for call-back (call {entry.call_sid})"


def replay_status(settings: Settings, session: Session, entry: Entry) -> str:
    """Record a status callback that arrived during the outage, and settle the ticket call."""
    data = entry.data
    log_row = calls.record_call_status(
        session,
        sid=entry.call_sid,
        status=_text(data.get("status"), 20) or "",
        line=_line(entry),
        duration=_text(data.get("duration")),
        sequence=_text(data.get("sequence")),
    )
    if params.is_final(log_row.status) and log_row.ended_at and log_row.ended_at > entry.at:
        log_row.ended_at = entry.at  # it ended when Twilio said so, not when we replayed it
        session.flush()
    if params.is_final(log_row.status):
        outcomes.settle_ticket_call(
            session,
            sid=entry.call_sid,
            duration=log_row.duration,
            now=log_row.ended_at,
            then=after_call(settings, paging_policy(settings)),
        )
    return f"status {data.get('status')} of call {entry.call_sid}"


# What a replayer gets: the settings, a session inside the entry's transaction, the entry.
Replayer = Callable[[Settings, Session, Entry], str | None]

REPLAYERS: dict[str, Replayer] = {
    "call": replay_call,
    "reason": replay_reason,
    "description": replay_description,
    "dial": replay_dial,
    "answered": replay_answered,
    "recording": replay_recording,
    "voicemail": replay_voicemail,
    "status": replay_status,
}
