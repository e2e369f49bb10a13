"""The major incidents of a period: how many, how fast acknowledged, how wide, how many calls."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tickets.incidents.models import Incident
from tickets.models import Ticket, TicketCall
from tickets.statistics.localtime import epoch_seconds
from tickets.statistics.percentiles import Spread, measure_spread
from tickets.statistics.period import Period


@dataclass(frozen=True)
class IncidentRow:
    """One incident opened in the period."""

    number: int
    opened_at: datetime
    organisations: int
    tickets: int
    calls: int
    # Seconds from opening until acknowledged; None while nobody acknowledged it.
    acknowledged_after: float | None


@dataclass(frozen=True)
class IncidentFigures:
    """The incidents opened in a period, and the spread of their time to acknowledge."""

    rows: list[IncidentRow]
    time_to_acknowledge: Spread

    @property
    def count(self) -> int:
        """Return how many incidents were opened."""
        return len(self.rows)

    @property
    def organisations(self) -> int:
        """Return the organisations affected, counted once per incident."""
        return sum(row.organisations for row in self.rows)

    @property
    def calls(self) -> int:
        """Return the emergency calls on the incidents' tickets."""
        return sum(row.calls for row in self.rows)

    @property
    def calls_per_incident(self) -> float | None:
        """Return the mean number of calls per incident, or None without incidents."""
        return self.calls / self.count if self.rows else None


def _opened_in(period: Period) -> tuple:
    return Incident.opened_at >= period.start, Incident.opened_at < period.end


def gather_incidents(session: Session, period: Period) -> IncidentFigures:
    """Return the incidents opened in the period, newest first, with their figures."""
    per_incident = (
        select(
            Ticket.incident_id,
            func.count(func.distinct(Ticket.organization_id)).label("organisations"),
            func.count(func.distinct(Ticket.id)).label("tickets"),
            func.count(TicketCall.id).label("calls"),
        )
        .outerjoin(TicketCall, TicketCall.ticket_id == Ticket.id)
        .where(Ticket.incident_id.is_not(None))
        .group_by(Ticket.incident_id)
        .subquery()
    )
    counts = per_incident.c
    found = session.execute(
        select(Incident, counts.organisations, counts.tickets, counts.calls)
        .outerjoin(per_incident, counts.incident_id == Incident.id)
        .where(*_opened_in(period))
        .order_by(Incident.opened_at.desc(), Incident.id.desc())
    ).all()
    rows = [
        IncidentRow(
            number=incident.number,
            opened_at=incident.opened_at,
            organisations=int(organisations or 0),
            tickets=int(tickets or 0),
            calls=int(calls or 0),
            acknowledged_after=(
                (incident.acknowledged_at - incident.opened_at).total_seconds()
                if incident.acknowledged_at
                else None
            ),
        )
        for incident, organisations, tickets, calls in found
    ]
    seconds = epoch_seconds(Incident.acknowledged_at) - epoch_seconds(Incident.opened_at)
    spread = measure_spread(
        session, seconds, *_opened_in(period), Incident.acknowledged_at.is_not(None)
    )
    return IncidentFigures(rows=rows, time_to_acknowledge=spread)
