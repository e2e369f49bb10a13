"""Export everything held about a person, as one JSON document (AVG/GDPR right of access).

The contact and its numbers; their tickets and calls with recordings' URLs, transcriptions and
timelines; the call log, call-backs, wrong PINs and texts of their numbers; their entries in
this host's outage journal; and the audit trail's rows about them. Other people on the same
tickets (a colleague who called again, the staff's internal notes on someone else's call) are
left out, as are rows that name another person sharing their number.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from core.settings import Settings
from ivr.models import CallLog, PinFailure
from ivr.outage.journal import Journal
from ivr.privacy import journal_files
from ivr.privacy.people import Person, from_numbers, linked
from ivr.privacy.scrub import Mentions, find_mentions, pattern
from tickets.audit import PRIVACY_EXPORT, note_change
from tickets.callback_queue.models import QueuedCallBack
from tickets.models import (
    AuditEvent,
    CallbackRequest,
    OutboxMessage,
    Ticket,
    TicketCall,
    TicketEvent,
    TimeEntry,
)
from tickets.serialize import call_to_dict, event_to_dict, iso


def _contact(person: Person) -> dict | None:
    contact = person.contact
    if contact is None:
        return None
    return {
        "name": contact.name,
        "email": contact.email,
        "role": contact.role,
        "organization": contact.organization.name,
        "phones": sorted(phone.number for phone in contact.phones),
        "has_pin": contact.pin_hash is not None,
        "created_at": iso(contact.created_at),
        "updated_at": iso(contact.updated_at),
    }


def _ticket(ticket: Ticket, *, own: bool, call_sids: set[str]) -> dict:
    """Return a ticket as it concerns them: all of it when it is theirs, else their calls' part."""
    data = {
        "number": ticket.number,
        "priority": ticket.priority,
        "category": ticket.category,
        "status": ticket.status,
        "reason": ticket.reason,
        "organization": ticket.organization.name if ticket.organization else None,
        "created_at": iso(ticket.created_at),
        "closed_at": iso(ticket.closed_at),
        "in_hours": ticket.in_hours,
        "verified": ticket.verified,
        "opened_by_them": own,
    }
    if own:
        data.update(
            caller=ticket.caller,
            description=ticket.description,
            waiting_question=ticket.waiting_question,
            release_week=ticket.release_week,
            rating=ticket.rating,
            rating_comment=ticket.rating_comment,
            time_entries=[
                {"at": iso(entry.at), "minutes": entry.minutes, "note": entry.note}
                | {"staff": entry.staff.name}
                for entry in ticket.time_entries
            ],
        )
    data["events"] = [
        event_to_dict(event)
        for event in ticket.events
        if event.call_sid in call_sids or (own and event.call_sid is None)
    ]
    return data


def _tickets_and_calls(session: Session, person: Person) -> tuple[list[dict], list[dict]]:
    """Return their tickets (theirs, or with a call of theirs) and their calls."""
    calls = session.scalars(
        select(TicketCall)
        .where(linked(person, TicketCall))
        .order_by(TicketCall.started_at, TicketCall.id)
    ).all()
    call_sids = {call.sid for call in calls}
    own = set(session.scalars(select(Ticket.id).where(linked(person, Ticket))))
    tickets = session.scalars(
        select(Ticket)
        .where(Ticket.id.in_(own | {call.ticket_id for call in calls}))
        .options(
            selectinload(Ticket.events).selectinload(TicketEvent.staff),
            selectinload(Ticket.time_entries).selectinload(TimeEntry.staff),
        )
        .order_by(Ticket.created_at, Ticket.id)
    ).all()
    exported_calls = [
        {"ticket": call.ticket.number, **call_to_dict(call), "recording_sid": call.recording_sid}
        for call in calls
    ]
    exported_tickets = [
        _ticket(ticket, own=ticket.id in own, call_sids=call_sids) for ticket in tickets
    ]
    return exported_tickets, exported_calls


def _rows(session: Session, person: Person) -> dict[str, list[dict]]:
    """Return the rows kept by number alone: call log, voicemails, wrong PINs, texts, call-backs."""
    where = from_numbers(person)
    log = session.scalars(
        select(CallLog).where(where[CallLog]).order_by(CallLog.started_at, CallLog.id)
    )
    callbacks = session.scalars(select(CallbackRequest).where(where[CallbackRequest]))
    pins = session.scalars(
        select(PinFailure).where(where[PinFailure]).order_by(PinFailure.at, PinFailure.id)
    )
    texts = session.scalars(select(OutboxMessage).where(where[OutboxMessage]))
    call_backs = session.scalars(select(QueuedCallBack).where(where[QueuedCallBack]))
    return {
        "call_log": [
            {"sid": row.sid, "line": row.line, "from": row.from_number, "to": row.to_number}
            | {"started_at": iso(row.started_at), "ended_at": iso(row.ended_at)}
            | {"status": row.status, "duration": row.duration, "choices": row.choices}
            for row in log
        ],
        "callback_requests": [
            {"call_sid": row.call_sid, "caller": row.caller, "department": row.department}
            | {"created_at": iso(row.created_at), "recording_url": row.recording_url}
            | {"recording_sid": row.recording_sid, "called_back_at": iso(row.called_back_at)}
            for row in callbacks
        ],
        "wrong_pins": [{"at": iso(row.at), "call_sid": row.call_sid} for row in pins],
        "call_backs": [
            {"ticket": row.ticket.number, "number": row.number, "status": row.status}
            | {"requested_at": iso(row.requested_at), "outcome": row.outcome}
            for row in call_backs
        ],
        "messages": [
            {"kind": row.kind, "channel": row.channel, "to": row.recipient}
            | {"ticket": row.ticket.number if row.ticket else None, "status": row.status}
            | {"created_at": iso(row.created_at), "sent_at": iso(row.sent_at)}
            for row in texts
        ],
    }


def _recordings(calls: list[dict], callbacks: list[dict]) -> list[dict]:
    """Return every recording of theirs: where it is, and of which call."""
    return [
        {"call_sid": row.get("sid") or row.get("call_sid"), "url": row["recording_url"]}
        | {"recording_sid": row.get("recording_sid")}
        for row in [*calls, *callbacks]
        if row.get("recording_url")
    ]


def _journal(settings: Settings, person: Person, calls: list[dict]) -> list[dict]:
    journal = Journal(settings.resolved_journal_path)
    sids = [call["sid"] for call in calls]
    return [
        {"file": path.name, "id": entry.id, "kind": entry.kind, "call_sid": entry.call_sid}
        | {"at": iso(entry.at), "data": entry.data}
        for path, entry in journal_files.entries_about(
            journal, numbers=person.numbers, call_sids=sids
        )
    ]


def _audit(session: Session, person: Person, ref: str) -> list[dict]:
    """Return the audit trail's rows that name them, or their keyed hash."""
    texts = [*person.identifiers(), ref]
    finder = pattern(texts)
    rows = session.scalars(
        select(AuditEvent)
        .where(
            or_(
                *(
                    func.lower(AuditEvent.detail).contains(text.lower(), autoescape=True)
                    for text in texts
                )
            )
        )
        .order_by(AuditEvent.at)
    )
    return [
        {"at": iso(row.at), "actor": row.actor, "action": row.action, "detail": row.detail}
        for row in rows
        if finder.search(row.detail)
    ]


def export_person(
    session: Session, settings: Settings, person: Person, *, actor: str, now: datetime
) -> dict:
    """Return everything held about a person; the export itself goes on the audit trail."""
    ref = person.ref(settings.secret_key.get_secret_value())
    note_change(session, actor=actor, action=PRIVACY_EXPORT, detail=f"person {ref}")
    session.flush()
    tickets, calls = _tickets_and_calls(session, person)
    rows = _rows(session, person)
    document = {
        "exported_at": iso(now),
        "asked_for": person.asked,
        "contact": _contact(person),
        "phone_numbers": sorted(person.numbers),
        "tickets": tickets,
        "calls": calls,
        "recordings": _recordings(calls, rows["callback_requests"]),
        **rows,
        "outage_journal": _journal(settings, person, calls),
        "audit_trail": _audit(session, person, ref),
    }
    document["mentioned_elsewhere"] = _elsewhere(session, person, document)
    session.flush()
    return document


def _strings(value) -> set[str]:
    """Return every string in a JSON-ready value."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return set().union(*(_strings(item) for item in value)) if value else set()
    return set()


def _elsewhere(session: Session, person: Person, document: dict) -> list[dict]:
    """Return the texts anywhere in the database that name them and are not exported above.

    A staff note on someone else's ticket, say, or a table that is not exported by name.
    """
    exported = _strings(document)
    return [
        {"table": table, "column": column, "text": text}
        for table, column, text in find_mentions(session, Mentions.of(person))
        if text not in exported
    ]
