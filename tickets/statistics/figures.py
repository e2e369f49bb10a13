"""The figures of one period: emergency calls by day, outcome and hour, timings, who took them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from tickets.models import Organization, Ticket, TicketCall
from tickets.statistics.incidents import IncidentFigures, gather_incidents
from tickets.statistics.localtime import epoch_seconds, local_hour, local_hour_number
from tickets.statistics.percentiles import Spread, measure_spread
from tickets.statistics.period import Period
from tickets.urgent import EMERGENCY_LINE, URGENT

# How the outcomes of emergency calls are grouped in the statistics, in the order shown.
OUTCOME_GROUPS = {
    "answered": ("answered",),
    "voicemail": ("voicemail",),
    "refused": ("refused",),
    "no_answer": ("no_answer",),
    "abandoned": ("abandoned_before_triage", "abandoned_after_triage", "abandoned_while_ringing"),
    # Out of hours the line offers a voicemail at once: leaving none is not hanging up.
    "closed": ("closed_no_message",),
    "call_back": ("call_back",),
    "informed": ("informed",),
    "in_progress": ("in_progress",),
}
GROUP_OF_OUTCOME = {outcome: group for group, kinds in OUTCOME_GROUPS.items() for outcome in kinds}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# What the telephone side gives for the office menu: (label, calls) per choice in [start, end).
OfficeChoiceCounter = Callable[..., list[tuple[str, int]]]


@dataclass(frozen=True)
class CallFigures:
    """Emergency calls counted per local day and outcome group, and per weekday and hour."""

    per_day: dict[date, Counter[str]]
    # heat[weekday][hour], Monday first, in the desk's time zone.
    heat: list[list[int]]
    totals: Counter[str] = field(default_factory=Counter)

    @property
    def count(self) -> int:
        """Return how many emergency calls started in the period."""
        return sum(self.totals.values())

    @property
    def settled(self) -> int:
        """Return how many of them have ended (have an outcome other than in progress)."""
        return self.count - self.totals["in_progress"]

    @property
    def answer_rate(self) -> float | None:
        """Return the share of settled calls an engineer accepted, or None without any."""
        return self.totals["answered"] / self.settled if self.settled else None


@dataclass(frozen=True)
class OrganisationFigures:
    """The emergency calls of one organisation (name None: a caller of no organisation)."""

    name: str | None
    tickets: int
    calls: int
    answered: int


@dataclass(frozen=True)
class EngineerFigures:
    """The emergency calls one engineer accepted, on tickets opened in and out of hours."""

    name: str
    in_hours: int
    out_of_hours: int

    @property
    def total(self) -> int:
        """Return every call the engineer accepted."""
        return self.in_hours + self.out_of_hours


@dataclass(frozen=True)
class Statistics:
    """Every figure of the statistics page for one period."""

    period: Period
    calls: CallFigures
    urgent_tickets: int
    time_to_accept: Spread
    time_to_acknowledge: Spread
    # The busiest organisations (all of them unless gathered with a limit), and how many called.
    organisations: list[OrganisationFigures]
    organisations_calling: int
    engineers: list[EngineerFigures]
    office_choices: list[tuple[str, int]]
    incidents: IncidentFigures | None = None


def _emergency_calls(period: Period) -> tuple:
    return (
        TicketCall.line == EMERGENCY_LINE,
        TicketCall.started_at >= period.start,
        TicketCall.started_at < period.end,
    )


def _urgent_tickets(period: Period) -> tuple:
    return (
        Ticket.priority == URGENT,
        Ticket.created_at >= period.start,
        Ticket.created_at < period.end,
    )


def count_calls(session: Session, period: Period) -> CallFigures:
    """Count the period's emergency calls per local hour and outcome, then per day and weekday."""
    hour = local_hour_number(TicketCall.started_at, period.zone, period.start, period.end)
    rows = session.execute(
        select(hour, TicketCall.outcome, func.count())
        .where(*_emergency_calls(period))
        .group_by(hour, TicketCall.outcome)
    ).all()
    per_day = {day: Counter() for day in period.days()}
    heat = [[0] * 24 for _ in WEEKDAYS]
    totals: Counter[str] = Counter()
    for number, outcome, calls in rows:
        moment = local_hour(int(number))
        group = GROUP_OF_OUTCOME.get(outcome, "in_progress")
        per_day.setdefault(moment.date(), Counter())[group] += calls
        heat[moment.weekday()][moment.hour] += calls
        totals[group] += calls
    return CallFigures(per_day=per_day, heat=heat, totals=totals)


def count_per_organisation(
    session: Session, period: Period, *, limit: int | None = None
) -> tuple[list[OrganisationFigures], int]:
    """Return the busiest organisations' emergency calls, tickets and answered calls, and how
    many organisations called; every organisation unless `limit` says how many."""
    # Grouped by organisation id first and named afterwards: half the time of grouping by name.
    per_organisation = (
        select(
            Ticket.organization_id,
            func.count(func.distinct(TicketCall.ticket_id)).label("tickets"),
            func.count().label("calls"),
            func.sum(case((TicketCall.outcome == "answered", 1), else_=0)).label("answered"),
        )
        .select_from(TicketCall)
        .join(Ticket, Ticket.id == TicketCall.ticket_id)
        .where(*_emergency_calls(period))
        .group_by(Ticket.organization_id)
        .subquery()
    )
    counts = per_organisation.c
    rows = session.execute(
        select(
            Organization.name,
            counts.tickets,
            counts.calls,
            counts.answered,
            func.count().over().label("calling"),
        )
        .select_from(per_organisation)
        .outerjoin(Organization, Organization.id == counts.organization_id)
        .order_by(counts.calls.desc(), Organization.name.is_(None), Organization.name)
        .limit(limit)
    ).all()
    figures = [
        OrganisationFigures(name, int(tickets), int(calls), int(answered or 0))
        for name, tickets, calls, answered, _ in rows
    ]
    return figures, int(rows[0].calling) if rows else 0


def count_per_engineer(session: Session, period: Period) -> list[EngineerFigures]:
    """Return the calls each engineer accepted, in and out of hours; busiest first."""
    rows = session.execute(
        select(TicketCall.answered_by, Ticket.in_hours, func.count())
        .join(Ticket, Ticket.id == TicketCall.ticket_id)
        .where(*_emergency_calls(period), TicketCall.answered_by.is_not(None))
        .group_by(TicketCall.answered_by, Ticket.in_hours)
    ).all()
    accepted: dict[str, Counter[bool]] = {}
    for name, in_hours, calls in rows:
        accepted.setdefault(name, Counter())[bool(in_hours)] += calls
    figures = [EngineerFigures(name, hours[True], hours[False]) for name, hours in accepted.items()]
    return sorted(figures, key=lambda engineer: (-engineer.total, engineer.name))


def measure_time_to_accept(session: Session, period: Period) -> Spread:
    """Return the spread of seconds from a call's start until an engineer accepted it."""
    seconds = epoch_seconds(TicketCall.answered_at) - epoch_seconds(TicketCall.started_at)
    return measure_spread(
        session, seconds, *_emergency_calls(period), TicketCall.answered_at.is_not(None)
    )


def measure_time_to_acknowledge(session: Session, period: Period) -> Spread:
    """Return the spread of seconds from an urgent ticket's creation until staff acknowledged it."""
    seconds = epoch_seconds(Ticket.acknowledged_at) - epoch_seconds(Ticket.created_at)
    return measure_spread(
        session, seconds, *_urgent_tickets(period), Ticket.acknowledged_at.is_not(None)
    )


def gather_statistics(
    session: Session,
    *,
    period: Period,
    office: OfficeChoiceCounter | None = None,
    organisations: int | None = None,
) -> Statistics:
    """Return every figure of the period; `office` counts the office menu's choices.

    `organisations` limits the organisations to that many of the busiest (a page shows a few
    dozen of what can be thousands; the CSV has every one).
    """
    urgent = session.scalar(select(func.count(Ticket.id)).where(*_urgent_tickets(period)))
    busiest, calling = count_per_organisation(session, period, limit=organisations)
    return Statistics(
        period=period,
        calls=count_calls(session, period),
        urgent_tickets=urgent or 0,
        time_to_accept=measure_time_to_accept(session, period),
        time_to_acknowledge=measure_time_to_acknowledge(session, period),
        organisations=busiest,
        organisations_calling=calling,
        engineers=count_per_engineer(session, period),
        office_choices=office(session, start=period.start, end=period.end) if office else [],
        incidents=gather_incidents(session, period),
    )
