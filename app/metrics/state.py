"""What the service's shared state says at the moment of a scrape: database, journal, outbox.

These are read when Prometheus asks, by the process that answers it, rather than kept in every
process: the database and the journal file are the same whichever worker looks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from core.clock import utcnow
from core.db import db
from core.settings import Settings
from ivr.messaging.sender import backlog
from ivr.outage.replay import journal_of
from tickets.models import OPEN_STATUSES, Page, Ticket

log = logging.getLogger(__name__)

# Paging states of an urgent ticket nobody has acknowledged yet: being paged, waiting for the
# opening-time summary, given up after every round; unverified: waiting for the next digest of
# unverified calls, or listed in one.
UNACKNOWLEDGED_PAGING = ("active", "waiting", "exhausted", "digest", "digested")


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class ServiceState:
    """A prometheus-client collector of the database's, the journal's and the outbox's state."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Yield the gauges, reading the journal and (when it answers) the database now."""
        yield from self._journal()
        reachable = self._database_reachable()
        yield _gauge(
            "ivr_database_up", "1 when the database answered the scrape's query, else 0.", reachable
        )
        if reachable:
            yield from self._database()

    def _journal(self) -> Iterator[GaugeMetricFamily]:
        journal = journal_of(self.settings)
        entries = journal.read().entries if journal.has_entries() else []
        oldest = min((entry.at for entry in entries), default=None)
        yield _gauge(
            "ivr_journal_entries_waiting",
            "Entries in this host's outage journal, waiting to be replayed into the database.",
            len({entry.id for entry in entries}),
        )
        yield _gauge(
            "ivr_journal_oldest_entry_age_seconds",
            "Age of the oldest entry in the outage journal (0 when it is empty).",
            max(0.0, (utcnow() - oldest).total_seconds()) if oldest else 0.0,
        )

    def _database_reachable(self) -> bool:
        try:
            db.session.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            log.warning("metrics: database unavailable (%s)", type(exc).__name__)
            db.session.rollback()
            return False
        return True

    def _database(self) -> Iterator[GaugeMetricFamily]:
        try:
            waiting, oldest = backlog(db.session, utcnow())
            rows = db.session.execute(
                select(Page.state, func.count(Page.id))
                .join(Ticket, Ticket.id == Page.ticket_id)
                .where(
                    Page.state.in_(UNACKNOWLEDGED_PAGING),
                    Ticket.acknowledged_at.is_(None),
                    Ticket.status.in_(OPEN_STATUSES),
                )
                .group_by(Page.state)
            ).all()
        except SQLAlchemyError as exc:
            log.warning("metrics: database query failed (%s)", type(exc).__name__)
            db.session.rollback()
            return
        finally:
            db.session.rollback()  # hold no transaction open after the scrape
        yield _gauge(
            "ivr_outbox_waiting_messages", "Messages due and not yet sent (pages, SMS).", waiting
        )
        yield _gauge(
            "ivr_outbox_oldest_waiting_seconds", "How long the oldest due message waited.", oldest
        )
        unacknowledged = GaugeMetricFamily(
            "ivr_urgent_tickets_unacknowledged",
            "Open urgent tickets nobody acknowledged, by paging state (exhausted: paging gave up).",
            labels=["paging"],
        )
        counts = dict(rows)
        for state in UNACKNOWLEDGED_PAGING:
            unacknowledged.add_metric([state], counts.get(state, 0))
        yield unacknowledged
