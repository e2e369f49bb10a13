"""Apply the retention settings: remove or anonymise personal data older than its days.

Rows stay, so the statistics keep their counts (calls per line and outcome, tickets per
organisation, call-backs per department, durations); only the personal columns are emptied.
Work goes in batches, each its own short transaction, so a first purge over years of history
never holds a lock a caller's webhook waits for, nor runs into the statement timeout.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Select, delete, or_, select, update
from sqlalchemy.orm import Session

from core.settings import Settings
from ivr.models import CallLog, PinFailure
from ivr.outage.journal import Journal
from ivr.privacy import journal_files
from ivr.privacy.recordings import (
    RETENTION,
    DeletionReport,
    delete_at_twilio,
    oblige_deletion,
    recording_sid,
)
from tickets import paging, sign_in_guard, urgent
from tickets.audit import RETENTION_PURGE, note_change
from tickets.callback_queue.models import QueuedCallBack
from tickets.helpdesk.models import UNFINISHED, HelpdeskDelivery
from tickets.models import (
    ERASED,
    OPEN_STATUSES,
    CallbackRequest,
    OutboxMessage,
    Ticket,
    TicketCall,
    TicketEvent,
)

log = logging.getLogger(__name__)

BATCH = 500
RECORDING_EVENTS = (urgent.VOICEMAIL, urgent.CALL_RECORDED)
UNSENT = ("pending", "sending")
WITHHELD = "anonymous"  # the PIN counter's key for withheld numbers: nobody's number


@dataclass
class PurgeReport:
    """What one purge removed, per kind of data, and how Twilio's deletions went."""

    removed: Counter = field(default_factory=Counter)
    archives: int = 0
    deletions: DeletionReport = field(default_factory=DeletionReport)

    def summary(self) -> str:
        """Return one line for people and the audit trail."""
        kinds = (
            "recordings",
            "transcriptions",
            "descriptions",
            "caller numbers",
            "helpdesk events",
            "failed sign-ins",
        )
        counts = ", ".join(f"{self.removed[kind]} {kind}" for kind in kinds)
        return f"purged {counts}, {self.archives} journal archives; {self.deletions.summary()}"


def _in_batches(session: Session, ids: Select, change: Callable[[list[int]], None]) -> int:
    """Apply `change` to the rows `ids` finds, a batch per transaction; return how many."""
    done: set[int] = set()
    while True:
        batch = [row_id for row_id in session.scalars(ids.limit(BATCH)) if row_id not in done]
        if not batch:  # nothing left (or only rows the change could not alter)
            session.rollback()
            return len(done)
        change(batch)
        session.commit()
        done.update(batch)


def _clear(session: Session, model, *where, values: dict, forget=None, now=None) -> int:
    """Set `values` on every row of `model` matching `where`; `forget` names its recordings.

    `forget(ids)` returns the recording sids of those rows: Twilio must delete them.
    """
    if hasattr(model, "updated_at"):
        values = {**values, "updated_at": model.updated_at}  # a purge is no update of theirs

    def change(ids: list[int]) -> None:
        if forget is not None:
            oblige_deletion(session, forget(ids), reason=RETENTION, now=now)
        session.execute(
            update(model)
            .where(model.id.in_(ids))
            .values(values)
            .execution_options(synchronize_session=False)
        )

    return _in_batches(session, select(model.id).where(*where), change)


def _recording_sids(session: Session, model) -> Callable[[list[int]], list[str | None]]:
    """Return the function that reads the recording sids of some rows of `model`."""

    def sids(ids: list[int]) -> list[str | None]:
        rows = session.execute(
            select(model.recording_sid, model.recording_url).where(model.id.in_(ids))
        )
        return [recording_sid(sid, url) for sid, url in rows]

    return sids


def _event_recording_sids(session: Session) -> Callable[[list[int]], list[str | None]]:
    """Return the function that reads the recordings named by some timeline events."""

    def sids(ids: list[int]) -> list[str | None]:
        details = session.scalars(select(TicketEvent.detail).where(TicketEvent.id.in_(ids)))
        return [recording_sid(None, detail) for detail in details]

    return sids


def purge_recordings(session: Session, *, before: datetime, now: datetime) -> int:
    """Forget recordings made before `before`, here and (by obligation) at Twilio."""
    no_recording = {"recording_url": None, "recording_sid": None}
    count = 0
    made = ((TicketCall, TicketCall.started_at), (CallbackRequest, CallbackRequest.created_at))
    for model, started in made:
        count += _clear(
            session,
            model,
            started < before,
            or_(model.recording_url.is_not(None), model.recording_sid.is_not(None)),
            values=no_recording,
            forget=_recording_sids(session, model),
            now=now,
        )
    # The timeline names each recording by its URL, also one a later recording replaced.
    _clear(
        session,
        TicketEvent,
        TicketEvent.detail.is_not(None),
        TicketEvent.kind.in_(RECORDING_EVENTS),
        TicketEvent.at < before,
        values={"detail": None},
        forget=_event_recording_sids(session),
        now=now,
    )
    return count


def purge_transcriptions(session: Session, *, before: datetime) -> int:
    """Remove the transcriptions of calls made before `before`."""
    count = _clear(
        session,
        TicketCall,
        TicketCall.transcription.is_not(None),
        TicketCall.started_at < before,
        values={"transcription": None},
    )
    _clear(
        session,
        TicketEvent,
        TicketEvent.detail.is_not(None),
        TicketEvent.kind == urgent.DESCRIPTION,
        TicketEvent.at < before,
        values={"detail": None},
    )
    return count


def purge_descriptions(session: Session, *, before: datetime) -> int:
    """Remove the descriptions of tickets opened before `before` that are no longer open."""
    return _clear(
        session,
        Ticket,
        Ticket.description.is_not(None),
        Ticket.created_at < before,
        Ticket.status.not_in(OPEN_STATUSES),
        values={"description": None},
    )


def purge_caller_numbers(session: Session, *, before: datetime) -> int:
    """Remove callers' numbers noted before `before`, wherever they were noted."""
    cleared = [
        (Ticket, [Ticket.caller.is_not(None), Ticket.created_at < before], {"caller": None}),
        (
            TicketCall,
            [TicketCall.caller.is_not(None), TicketCall.started_at < before],
            {"caller": None},
        ),
        (
            CallLog,
            [or_(CallLog.from_number.is_not(None), CallLog.caller_id.is_not(None))]
            + [CallLog.started_at < before],
            {"from_number": None, "caller_id": None},
        ),
        (
            CallbackRequest,
            [CallbackRequest.caller.is_not(None), CallbackRequest.created_at < before],
            {"caller": None},
        ),
        (
            QueuedCallBack,
            [QueuedCallBack.number.is_not(None), QueuedCallBack.requested_at < before],
            {"number": None},
        ),
        (
            PinFailure,
            [PinFailure.caller_key.not_in((ERASED, WITHHELD)), PinFailure.at < before],
            {"caller_key": ERASED},
        ),
        (
            OutboxMessage,
            [OutboxMessage.kind.in_(paging.CALLER_KINDS), OutboxMessage.recipient != ERASED]
            + [OutboxMessage.created_at < before, OutboxMessage.status.not_in(UNSENT)],
            {"recipient": ERASED},
        ),
    ]
    return sum(_clear(session, model, *where, values=values) for model, where, values in cleared)


def purge_helpdesk_deliveries(session: Session, *, before: datetime) -> int:
    """Delete helpdesk deliveries done before `before`: they hold copies of tickets and calls."""
    finished = select(HelpdeskDelivery.id).where(
        HelpdeskDelivery.created_at < before, HelpdeskDelivery.status.not_in(UNFINISHED)
    )

    def change(ids: list[int]) -> None:
        session.execute(delete(HelpdeskDelivery).where(HelpdeskDelivery.id.in_(ids)))

    return _in_batches(session, finished, change)


def purge_database(session: Session, settings: Settings, *, now: datetime) -> Counter:
    """Apply every retention period to the database; return how many rows each kind touched."""
    days = settings.privacy

    def ago(count: int) -> datetime:
        return now - timedelta(days=count)

    removed: Counter = Counter()
    removed["recordings"] = purge_recordings(session, before=ago(days.recording_days), now=now)
    removed["transcriptions"] = purge_transcriptions(session, before=ago(days.transcription_days))
    removed["descriptions"] = purge_descriptions(session, before=ago(days.description_days))
    removed["caller numbers"] = purge_caller_numbers(session, before=ago(days.caller_number_days))
    removed["helpdesk events"] = purge_helpdesk_deliveries(session, before=ago(days.shortest_days))
    # Failed sign-ins (e-mail addresses anyone typed) count for minutes only.
    removed["failed sign-ins"] = sign_in_guard.purge_failures(session, now=now)
    session.flush()
    return removed


def apply_retention(
    session: Session, settings: Settings, *, actor: str, now: datetime
) -> PurgeReport:
    """Purge now: the database, this host's journal archives, then the recordings at Twilio.

    Recordings whose deletion failed before are asked for again. The purge is on the audit
    trail with what it did.
    """
    report = PurgeReport(removed=purge_database(session, settings, now=now))
    journal = Journal(settings.resolved_journal_path)
    report.archives = journal_files.purge_archives(
        journal, before=now - timedelta(days=settings.privacy.shortest_days)
    )
    report.deletions = delete_at_twilio(session, settings)
    note_change(session, actor=actor, action=RETENTION_PURGE, detail=report.summary())
    session.flush()
    log.info("privacy: %s", report.summary())
    return report
