"""Count what happens to tickets, for Prometheus: urgent tickets opened, time to acknowledge.

The metric objects of the ticket side live here and nowhere else; the telephone side's are in
`ivr.metrics.counters`, which serves both. Service functions call these after their commit, so
a change that was rolled back is never counted. Labels carry only fixed words, never a ticket
number, a name or a phone number.
"""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import Counter, Histogram

from tickets.models import PRIORITIES

# How an urgent ticket came to be opened.
OPENED_HOW = ("caller_id", "pin", "unverified", "journal")
# How staff acknowledged a ticket (the `via` of the lifecycle functions).
ACKNOWLEDGED_VIA = ("dashboard", "api", "sms")
OTHER = "other"

URGENT_TICKETS_OPENED = Counter(
    "ivr_urgent_tickets_opened",
    "Urgent tickets opened by emergency calls (a call that joins an open ticket opens none).",
    ["how"],
)
TIME_TO_ACKNOWLEDGE = Histogram(
    "ivr_time_to_acknowledge_seconds",
    "From a ticket's creation to the first staff acknowledgement.",
    ["priority", "via"],
    buckets=(30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200),
)


def bounded(value: str | None, known: tuple[str, ...]) -> str:
    """Return `value` when it is one of the fixed words, else 'other': labels stay bounded."""
    return value if value in known else OTHER


def count_urgent_ticket_opened(how: str) -> None:
    """Count one new urgent ticket, by how its caller was (or was not) identified."""
    URGENT_TICKETS_OPENED.labels(how=bounded(how, OPENED_HOW)).inc()


def observe_acknowledgement(*, priority: str, via: str, waited: timedelta | None) -> None:
    """Record how long a ticket waited before staff acknowledged it."""
    if waited is None:
        return
    TIME_TO_ACKNOWLEDGE.labels(
        priority=bounded(priority, PRIORITIES), via=bounded(via, ACKNOWLEDGED_VIA)
    ).observe(max(0.0, waited.total_seconds()))
