"""Erase a person's data on request: remove or anonymise it everywhere; tickets stay.

Their contact and its numbers are deleted; their tickets and calls lose the link, the number,
what they said and their recordings (deleted at Twilio too), but keep organisation, reason,
times, outcome and duration, so the statistics still count them. Rows kept by number alone
(call log, call-backs, wrong PINs, texts) lose the number. Then every table's free text is
looked through for their e-mail address, name and numbers (however they were typed), and so
is this host's outage journal. One transaction does the database; the audit trail names them
only by a keyed hash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from core.settings import Settings
from ivr.models import CallLog, PinFailure
from ivr.outage.journal import Journal
from ivr.privacy import journal_files
from ivr.privacy.people import Person, from_numbers, linked
from ivr.privacy.recordings import (
    ERASE,
    DeletionReport,
    delete_at_twilio,
    oblige_deletion,
    recording_sid,
)
from ivr.privacy.retention import RECORDING_EVENTS, UNSENT
from ivr.privacy.scrub import Mentions, scrub_mentions
from tickets import urgent
from tickets.audit import PRIVACY_ERASE, note_change
from tickets.callback_queue.models import QueuedCallBack
from tickets.models import (
    ERASED,
    CallbackRequest,
    Contact,
    ContactPhone,
    OutboxMessage,
    Ticket,
    TicketCall,
    TicketEvent,
)

SAID_OR_RECORDED = (*RECORDING_EVENTS, urgent.DESCRIPTION)


@dataclass
class EraseReport:
    """What an erasure removed or anonymised, table by table."""

    rows: dict[str, int] = field(default_factory=dict)
    recordings: set[str] = field(default_factory=set)
    journal_entries: int = 0
    journal_problem: str | None = None
    deletions: DeletionReport = field(default_factory=DeletionReport)

    def lines(self) -> list[str]:
        """Return the summary for people, a line per kind of data."""
        rows = self.rows
        lines = [
            f"contact: {rows.get('contacts', 0)} deleted, with {rows.get('phones', 0)} numbers",
            f"tickets kept without the person: {rows.get('tickets', 0)}",
            f"calls kept without the person: {rows.get('calls', 0)}",
            f"timeline entries emptied: {rows.get('events', 0)}",
            f"call log: {rows.get('call_log', 0)}, call-backs: {rows.get('callbacks', 0)}, "
            f"wrong PINs: {rows.get('pin_failures', 0)}, texts: {rows.get('messages', 0)}",
            f"other rows naming them (free text): {rows.get('free_text', 0)}",
            f"outage journal entries anonymised: {self.journal_entries}",
            self.deletions.summary(),
        ]
        if self.journal_problem:
            lines.append(f"outage journal not reachable: {self.journal_problem}")
        return lines


def _count(session: Session, statement) -> int:
    return session.execute(statement.execution_options(synchronize_session=False)).rowcount


def _erase_calls(session: Session, person: Person, report: EraseReport) -> list[str]:
    """Unlink their calls; forget their numbers, words and recordings; return the call sids."""
    calls = session.execute(
        select(
            TicketCall.id, TicketCall.sid, TicketCall.recording_sid, TicketCall.recording_url
        ).where(linked(person, TicketCall))
    ).all()
    report.recordings.update(recording_sid(sid, url) for _, _, sid, url in calls)
    ids, sids = [row.id for row in calls], [row.sid for row in calls]
    report.rows["calls"] = _count(
        session,
        update(TicketCall)
        .where(TicketCall.id.in_(ids))
        .values(
            contact_id=None, caller=None, recording_url=None, recording_sid=None, transcription=None
        ),
    )
    events = session.execute(
        select(TicketEvent.id, TicketEvent.detail).where(
            TicketEvent.call_sid.in_(sids),
            TicketEvent.kind.in_(SAID_OR_RECORDED),
            TicketEvent.detail.is_not(None),
        )
    ).all()
    report.recordings.update(recording_sid(None, detail) for _, detail in events)
    report.rows["events"] = _count(
        session,
        update(TicketEvent)
        .where(TicketEvent.id.in_([row.id for row in events]))
        .values(detail=None),
    )
    return sids


def _erase_tickets(session: Session, person: Person, report: EraseReport) -> None:
    """Their tickets stay, without the link, the number or the description they gave."""
    report.rows["tickets"] = _count(
        session,
        update(Ticket)
        .where(linked(person, Ticket))
        .values(contact_id=None, caller=None, description=None, updated_at=Ticket.updated_at),
    )


def _erase_by_number(session: Session, person: Person, report: EraseReport) -> None:
    """Rows kept by number alone lose it; an unsent text to them is not sent."""
    where = from_numbers(person)
    report.recordings.update(
        recording_sid(sid, url)
        for sid, url in session.execute(
            select(CallbackRequest.recording_sid, CallbackRequest.recording_url).where(
                where[CallbackRequest]
            )
        )
    )
    changes = {
        "call_log": update(CallLog)
        .where(where[CallLog])
        .values(from_number=None, caller_id=None, updated_at=CallLog.updated_at),
        "callbacks": update(CallbackRequest)
        .where(where[CallbackRequest])
        .values(caller=None, recording_url=None, recording_sid=None),
        "pin_failures": update(PinFailure).where(where[PinFailure]).values(caller_key=ERASED),
        "call_backs": update(QueuedCallBack).where(where[QueuedCallBack]).values(number=None),
    }
    session.execute(
        update(OutboxMessage)
        .where(where[OutboxMessage], OutboxMessage.status.in_(UNSENT))
        .values(status="cancelled", last_error="erased on request")
    )
    changes["messages"] = update(OutboxMessage).where(where[OutboxMessage]).values(recipient=ERASED)
    for name, statement in changes.items():
        report.rows[name] = _count(session, statement)


def _delete_contact(session: Session, person: Person, report: EraseReport) -> None:
    """Delete the contact and its numbers; nothing links to it any more."""
    if person.contact is None:
        return
    contact_id = person.contact.id
    for model in (Ticket, TicketCall):  # linked rows outside `linked` cannot exist, but be sure
        session.execute(update(model).where(model.contact_id == contact_id).values(contact_id=None))
    report.rows["phones"] = _count(
        session, delete(ContactPhone).where(ContactPhone.contact_id == contact_id)
    )
    report.rows["contacts"] = _count(session, delete(Contact).where(Contact.id == contact_id))


def _erase_journal(
    settings: Settings, person: Person, sids: list[str], report: EraseReport
) -> None:
    """Anonymise their entries in this host's outage journal and its archives."""
    journal = Journal(settings.resolved_journal_path)
    try:
        report.journal_entries, found = journal_files.scrub_person(
            journal, numbers=person.numbers, call_sids=sids
        )
    except OSError as exc:
        report.journal_problem = f"{journal.path}: {exc.strerror or exc}"
        return
    report.recordings.update(found)


def erase_person(
    session: Session, settings: Settings, person: Person, *, actor: str, now: datetime
) -> EraseReport:
    """Remove or anonymise everything held about a person; delete their recordings at Twilio."""
    report = EraseReport()
    mentions = Mentions.of(person)  # before the contact, which names them, is deleted
    sids = _erase_calls(session, person, report)
    _erase_tickets(session, person, report)
    _erase_by_number(session, person, report)
    _delete_contact(session, person, report)
    report.rows["free_text"] = scrub_mentions(session, mentions)
    _erase_journal(settings, person, sids, report)
    report.recordings.discard(None)
    oblige_deletion(session, report.recordings, reason=ERASE, now=now)
    detail = "; ".join(report.lines()[:-1])
    ref = person.ref(settings.secret_key.get_secret_value())
    note_change(session, actor=actor, action=PRIVACY_ERASE, detail=f"person {ref}: {detail}")
    session.flush()
    report.deletions = delete_at_twilio(session, settings, only=report.recordings)
    return report
