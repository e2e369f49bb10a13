"""Move tickets through the help page's lifecycle; every change is kept in the ticket's history.

Each function takes the session first and the acting staff member, checks everything before it
touches anything, writes a `TicketEvent` with who and when, and commits. A refused change raises
a `LifecycleError` subclass and leaves the database as it was.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from core.clock import utcnow
from tickets import metrics, paging
from tickets.helpdesk import events as helpdesk
from tickets.labels import status_label
from tickets.models import (
    CATEGORIES,
    STATUSES,
    CallbackRequest,
    StaffUser,
    Ticket,
    TicketEvent,
    TimeEntry,
)
from tickets.releases import ReleaseWeekError, parse_week

# Where a ticket may go next. Closed is final: only an admin's explicit reopen leaves it.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("in_progress", "waiting_for_customer", "with_product_team", "resolved", "closed"),
    "in_progress": (
        "waiting_for_customer",
        "with_product_team",
        "planned",
        "resolved",
        "closed",
    ),
    "waiting_for_customer": ("in_progress", "with_product_team", "resolved", "closed"),
    "with_product_team": (
        "in_progress",
        "waiting_for_customer",
        "planned",
        "resolved",
        "closed",
    ),
    "planned": ("in_progress", "with_product_team", "resolved", "closed"),
    "resolved": ("in_progress", "closed"),
    "closed": (),
}

FREE_QUESTION_MINUTES = 30
MAX_MINUTES_PER_ENTRY = 480
MAX_TEXT = 5000
MAX_QUESTION = 2000
RATINGS = (1, 2, 3, 4, 5)


class LifecycleError(ValueError):
    """A change to a ticket was refused; nothing was saved."""

    status_code = 400


class InvalidInput(LifecycleError):
    """A value given for a change is missing or wrong."""


class TicketNotFound(LifecycleError):
    """No ticket has this number."""

    status_code = 404


class InvalidTransition(LifecycleError):
    """The ticket's current state does not allow this change."""

    status_code = 409


class StaleTicket(LifecycleError):
    """Someone else changed the ticket since it was read."""

    status_code = 409

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message or "This ticket was changed by someone else meanwhile: reload it and try again."
        )


class ApprovalRequired(LifecycleError):
    """Billable time needs the customer's approval of the standard rate first."""

    status_code = 409


class NotAllowed(LifecycleError):
    """The acting staff member's role does not allow this change."""

    status_code = 403


@dataclass(frozen=True)
class TimeSummary:
    """Minutes logged on a ticket, split into free and billable."""

    total: int
    billable: int
    free_left: int | None

    @property
    def free(self) -> int:
        """Return the minutes not charged."""
        return self.total - self.billable


def find_ticket(session: Session, number: str | int, *, options: Sequence = ()) -> Ticket:
    """Return the ticket with this number, or raise TicketNotFound.

    With loader `options` the ticket and what they load are read fresh from the database, as a
    page or an answer that shows them needs; without, the session's copy will do.
    """
    ticket_id = Ticket.id_from_number(number)
    ticket = None
    if ticket_id is not None and options:
        ticket = session.scalar(
            select(Ticket)
            .where(Ticket.id == ticket_id)
            .options(*options)
            .execution_options(populate_existing=True)
        )
    elif ticket_id is not None:
        ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise TicketNotFound(f"There is no ticket {str(number)[:20]}.")
    return ticket


def next_statuses(ticket: Ticket) -> tuple[str, ...]:
    """Return the statuses this ticket may move to now."""
    return TRANSITIONS.get(ticket.status, ())


def time_summary(session: Session, ticket: Ticket) -> TimeSummary:
    """Return the minutes logged on a ticket and how many of them are billable."""
    total, billable = session.execute(
        select(
            func.coalesce(func.sum(TimeEntry.minutes), 0),
            func.coalesce(
                func.sum(TimeEntry.minutes).filter(TimeEntry.billable.is_(True)),
                0,
            ),
        ).where(TimeEntry.ticket_id == ticket.id)
    ).one()
    free_left = max(0, FREE_QUESTION_MINUTES - total) if ticket.category == "question" else None
    return TimeSummary(total=int(total), billable=int(billable), free_left=free_left)


def time_to_acknowledge(ticket: Ticket) -> timedelta | None:
    """Return how long the ticket waited before staff acknowledged it."""
    if ticket.acknowledged_at is None:
        return None
    return ticket.acknowledged_at - ticket.created_at


def _check_version(ticket: Ticket, expected_version: int | str | None) -> None:
    """Refuse a change made on a copy of the ticket older than the stored one."""
    if expected_version is None or expected_version == "":
        return
    try:
        expected = int(expected_version)
    except (TypeError, ValueError):
        raise InvalidInput("The ticket version sent with the change is not a number.") from None
    if expected != ticket.version:
        raise StaleTicket()


def _text(value: str | None, *, what: str, limit: int, required: bool) -> str | None:
    """Return a stripped text, or raise InvalidInput when it is missing or too long."""
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"The {what} must be text.")
    cleaned = (value or "").strip()
    if required and not cleaned:
        raise InvalidInput(f"The {what} is required.")
    if len(cleaned) > limit:
        raise InvalidInput(f"The {what} is too long (at most {limit} characters).")
    return cleaned or None


def _whole_number(value, *, what: str) -> int:
    """Return an integer given as int or digits, or raise InvalidInput."""
    if isinstance(value, bool):
        raise InvalidInput(f"The {what} must be a whole number.")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 12:
        return int(value.strip())
    raise InvalidInput(f"The {what} must be a whole number.")


def _refuse_if_closed(ticket: Ticket, action: str) -> None:
    if ticket.status == "closed":
        raise InvalidTransition(f"Ticket {ticket.number} is closed: it cannot {action}.")


# The changes of the unit of work being saved, for its `ticket.updated` helpdesk event.
_CHANGES = "helpdesk_ticket_changes"


def _event(
    session: Session, ticket: Ticket, staff: StaffUser, kind: str, detail: str, at: datetime
) -> TicketEvent:
    """Add an entry to the ticket's history; the helpdesk hears of it when it is saved."""
    event = TicketEvent(ticket_id=ticket.id, staff_id=staff.id, kind=kind, detail=detail, at=at)
    session.add(event)
    session.info.setdefault(_CHANGES, []).append((ticket, staff, helpdesk.Change(kind, detail), at))
    return event


def _tell_helpdesk(session: Session) -> None:
    """Write one `ticket.updated` per changed ticket, with the ticket as it is now written."""
    noted = session.info.pop(_CHANGES, [])
    if not noted:
        return
    session.flush()  # the version and updated_at the event reports are the ones written
    tickets: dict[int, list] = {}
    for entry in noted:
        tickets.setdefault(entry[0].id, []).append(entry)
    for entries in tickets.values():
        ticket, staff, _, at = entries[-1]
        changes = [change for _, _, change, _ in entries]
        helpdesk.ticket_updated(session, ticket=ticket, staff=staff, changes=changes, at=at)


def _acknowledge(
    session: Session, ticket: Ticket, staff: StaffUser, now: datetime, via: str
) -> bool:
    """Record the first staff reaction to a ticket, once; it stops the ticket's paging.

    Return whether this was the first, to be counted once the change is committed.
    """
    if ticket.acknowledged_at is not None:
        return False
    ticket.acknowledged_at = now
    ticket.acknowledged_by_id = staff.id
    detail = f"acknowledged by {staff.name} ({via})"
    _event(session, ticket, staff, "acknowledged", detail, now)
    paging.acknowledged(session, ticket=ticket, staff=staff, via=via, now=now)
    return True


def _count_acknowledgement(ticket: Ticket, via: str) -> None:
    """Observe the time to acknowledge of a ticket just acknowledged (and committed)."""
    metrics.observe_acknowledgement(
        priority=ticket.priority, via=via, waited=time_to_acknowledge(ticket)
    )


@contextmanager
def _saving(session: Session) -> Iterator[None]:
    """Commit the changes made inside the block, or roll all of them back."""
    try:
        yield
        _tell_helpdesk(session)
        session.commit()
    except StaleDataError as exc:
        session.info.pop(_CHANGES, None)
        session.rollback()
        raise StaleTicket() from exc
    except BaseException:
        session.info.pop(_CHANGES, None)
        session.rollback()
        raise


def acknowledge_ticket(
    session: Session,
    *,
    ticket: Ticket,
    staff: StaffUser,
    expected_version=None,
    via: str = "dashboard",
) -> Ticket:
    """Acknowledge a ticket and assign it to `staff`; a new ticket moves to in progress.

    `via` says how (dashboard, api, sms) on the timeline and in the others' notices.
    """
    _check_version(ticket, expected_version)
    _refuse_if_closed(ticket, "be acknowledged")
    if ticket.acknowledged_at is not None and ticket.assigned_to_id == staff.id:
        return ticket
    now = utcnow()
    with _saving(session):
        first = _acknowledge(session, ticket, staff, now, via)
        if ticket.assigned_to_id != staff.id:
            before = ticket.assigned_to.name if ticket.assigned_to else None
            ticket.assigned_to_id = staff.id
            detail = f"assigned to {staff.name}" + (f" (was {before})" if before else "")
            _event(session, ticket, staff, "assigned", detail, now)
        if ticket.status == "new":
            ticket.status = "in_progress"
            _event(session, ticket, staff, "status", "new → in_progress", now)
    if first:
        _count_acknowledgement(ticket, via)
    return ticket


def _check_transition(ticket: Ticket, status: str) -> None:
    """Refuse a status that does not exist or that the ticket cannot move to from where it is."""
    if status not in STATUSES:
        raise InvalidInput(
            f"{str(status)[:40]!r} is not a status; use one of {', '.join(STATUSES)}."
        )
    current = ticket.status
    if status == current:
        raise InvalidTransition(
            f"Ticket {ticket.number} is already {status_label(status).lower()}."
        )
    if status not in TRANSITIONS.get(current, ()):
        allowed = ", ".join(status_label(s).lower() for s in TRANSITIONS.get(current, ()))
        hint = f" It can move to: {allowed}." if allowed else " Only an admin can reopen it."
        raise InvalidTransition(
            f"A ticket that is {status_label(current).lower()} cannot become "
            f"{status_label(status).lower()}.{hint}"
        )


def _status_details(
    status: str, *, question, release_week, rating, comment
) -> tuple[dict[str, object], str]:
    """Return the fields a target status sets on the ticket, and how the timeline says so."""
    if status == "waiting_for_customer":
        asked = _text(question, what="question asked", limit=MAX_QUESTION, required=True)
        return {"waiting_question": asked}, f"; question: {asked}"
    if status == "planned":
        try:
            week = parse_week(release_week or "")
        except ReleaseWeekError as exc:
            raise InvalidInput(f"Planning needs a release week: {exc}.") from None
        return {"release_week": week}, f"; release week {week}"
    if status == "closed":
        if rating is None or rating == "":
            raise InvalidInput("Closing needs the customer's rating, 1 to 5.")
        value = _whole_number(rating, what="rating")
        if value not in RATINGS:
            raise InvalidInput("The rating must be 1, 2, 3, 4 or 5.")
        remark = _text(comment, what="comment", limit=MAX_TEXT, required=False)
        said = f"; rating {value}" + (f": {remark}" if remark else "")
        return {"rating": value, "rating_comment": remark}, said
    return {}, ""


def change_status(
    session: Session,
    *,
    ticket: Ticket,
    staff: StaffUser,
    status: str,
    question: str | None = None,
    release_week: str | None = None,
    rating=None,
    comment: str | None = None,
    expected_version=None,
    via: str = "dashboard",
) -> Ticket:
    """Move a ticket to another status, with what that status requires.

    waiting_for_customer needs the question asked, planned a release week (YYYY-Www), closed
    the customer's rating (1 to 5) and an optional comment.
    """
    _check_version(ticket, expected_version)
    _check_transition(ticket, status)
    changes, said = _status_details(
        status, question=question, release_week=release_week, rating=rating, comment=comment
    )
    detail = f"{ticket.status} → {status}{said}"
    now = utcnow()
    with _saving(session):
        first = _acknowledge(session, ticket, staff, now, via)
        if status in ("resolved", "closed") and ticket.status != "resolved":
            paging.tell_caller(session, ticket=ticket, kind=paging.CALLER_RESOLVED)
        ticket.status = status
        for name, value in changes.items():
            setattr(ticket, name, value)
        if status == "closed":
            ticket.closed_at = now
        _event(session, ticket, staff, "status", detail, now)
    if first:
        _count_acknowledgement(ticket, via)
    return ticket


def close_ticket(
    session: Session,
    *,
    ticket: Ticket,
    staff: StaffUser,
    rating,
    comment: str | None = None,
    expected_version=None,
    via: str = "dashboard",
) -> Ticket:
    """Close a ticket with the customer's rating and comment."""
    return change_status(
        session,
        ticket=ticket,
        staff=staff,
        status="closed",
        rating=rating,
        comment=comment,
        expected_version=expected_version,
        via=via,
    )


def reopen_ticket(
    session: Session, *, ticket: Ticket, staff: StaffUser, expected_version=None
) -> Ticket:
    """Reopen a closed ticket (admins only); its old rating stays in the history."""
    _check_version(ticket, expected_version)
    if staff.role != "admin":
        raise NotAllowed("Only an admin can reopen a closed ticket.")
    if ticket.status != "closed":
        raise InvalidTransition(f"Ticket {ticket.number} is not closed.")
    now = utcnow()
    with _saving(session):
        detail = "closed → in_progress (reopened)"
        if ticket.rating is not None:
            detail += f"; previous rating {ticket.rating}"
        ticket.status = "in_progress"
        ticket.closed_at = None
        ticket.rating = None
        ticket.rating_comment = None
        _event(session, ticket, staff, "status", detail, now)
    return ticket


def change_category(
    session: Session, *, ticket: Ticket, staff: StaffUser, category: str, expected_version=None
) -> Ticket:
    """Change a ticket's category (bug, question or other)."""
    _check_version(ticket, expected_version)
    if category not in CATEGORIES:
        raise InvalidInput(
            f"{str(category)[:40]!r} is not a category; use one of {', '.join(CATEGORIES)}."
        )
    _refuse_if_closed(ticket, "change category")
    if ticket.category == category:
        return ticket
    now = utcnow()
    with _saving(session):
        _event(session, ticket, staff, "category", f"{ticket.category} → {category}", now)
        ticket.category = category
    return ticket


def add_note(session: Session, *, ticket: Ticket, staff: StaffUser, text: str) -> TicketEvent:
    """Add an internal note to a ticket's history."""
    body = _text(text, what="note", limit=MAX_TEXT, required=True)
    with _saving(session):
        event = _event(session, ticket, staff, "note", body, utcnow())
    return event


def log_time(
    session: Session,
    *,
    ticket: Ticket,
    staff: StaffUser,
    minutes,
    note: str | None = None,
    expected_version=None,
) -> list[TimeEntry]:
    """Log minutes of work; on a question, time beyond the free 30 minutes needs rate approval.

    Work that crosses the free limit is split into a free and a billable entry.
    """
    _check_version(ticket, expected_version)
    amount = _whole_number(minutes, what="number of minutes")
    if not 1 <= amount <= MAX_MINUTES_PER_ENTRY:
        raise InvalidInput(f"Minutes must be between 1 and {MAX_MINUTES_PER_ENTRY} per entry.")
    remark = _text(note, what="note", limit=1000, required=False)
    _refuse_if_closed(ticket, "take more time")
    summary = time_summary(session, ticket)
    billable = 0
    if ticket.category == "question":
        billable = max(0, amount - (summary.free_left or 0))
        if billable and ticket.rate_approved_at is None:
            raise ApprovalRequired(
                f"The first {FREE_QUESTION_MINUTES} minutes of a question are free and "
                f"{summary.total} are already logged: record the customer's approval of the "
                "standard rate before logging more."
            )
    parts = [(amount - billable, False), (billable, True)]
    now = utcnow()
    entries = [
        TimeEntry(
            ticket_id=ticket.id, staff_id=staff.id, minutes=part, note=remark, at=now, billable=paid
        )
        for part, paid in parts
        if part
    ]
    detail = f"{amount} min logged"
    if billable:
        detail += f" ({amount - billable} free, {billable} at the standard rate)"
    detail += f"; total {summary.total + amount} min" + (f"; {remark}" if remark else "")
    with _saving(session):
        session.add_all(entries)
        # Touching the row bumps its version, so two agents logging at once cannot both pass
        # the free-minutes check on the same total.
        ticket.updated_at = now
        _event(session, ticket, staff, "time", detail, now)
    return entries


def record_rate_approval(
    session: Session, *, ticket: Ticket, staff: StaffUser, expected_version=None
) -> Ticket:
    """Record that the customer approved work at the standard rate."""
    _check_version(ticket, expected_version)
    _refuse_if_closed(ticket, "record a rate approval")
    if ticket.rate_approved_at is not None:
        return ticket
    now = utcnow()
    with _saving(session):
        ticket.rate_approved_at = now
        ticket.rate_approved_by_id = staff.id
        _event(
            session,
            ticket,
            staff,
            "rate_approved",
            "customer approved the standard rate",
            now,
        )
    return ticket


def set_release_week(
    session: Session, *, ticket: Ticket, staff: StaffUser, week: str, expected_version=None
) -> Ticket:
    """Change the release week of a planned ticket (a slip to a later cycle, say)."""
    _check_version(ticket, expected_version)
    try:
        parsed = parse_week(week)
    except ReleaseWeekError as exc:
        raise InvalidInput(f"{exc}.") from None
    if ticket.status != "planned":
        raise InvalidTransition(
            "Only a planned ticket has a release week: change the status to planned."
        )
    if ticket.release_week == parsed:
        return ticket
    now = utcnow()
    with _saving(session):
        _event(session, ticket, staff, "release_week", f"{ticket.release_week} → {parsed}", now)
        ticket.release_week = parsed
    return ticket


def mark_called_back(
    session: Session, *, callback: CallbackRequest, staff: StaffUser
) -> CallbackRequest:
    """Record that `staff` called back the caller of an office voicemail."""
    now = utcnow()
    with _saving(session):
        done = session.execute(
            update(CallbackRequest)
            .where(CallbackRequest.id == callback.id, CallbackRequest.called_back_at.is_(None))
            .values(called_back_at=now, called_back_by_id=staff.id)
        ).rowcount
        if not done:
            raise InvalidTransition("This caller was already called back.")
    session.refresh(callback)
    return callback
