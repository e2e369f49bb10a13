"""The telephone side's metric objects, and the one-line calls that move them.

Each is counted where the thing happens, in the process it happens in; under `ivr serve`
prometheus-client's multiprocess mode writes every worker's values to files that the scrape adds
up. Label values are fixed words only (a line, an outcome, an endpoint name, a rota level):
never a phone number, a name, a CallSid or a ticket number.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from core.helpdesk_settings import EVENT_TYPES, TEST
from ivr.calls import EMERGENCY_WITHOUT_TICKET, FAILED, OFFICE_OUTCOMES, OUTAGE
from ivr.lines import EMERGENCY, OFFICE
from tickets.callback_queue import CALL_BACK
from tickets.caller_texts import CALLER_INCIDENT, CALLER_INCIDENT_END
from tickets.incidents.pages import INCIDENT_DIGEST
from tickets.metrics import OTHER, bounded
from tickets.models import MESSAGE_CHANNELS
from tickets.paging import (
    ACK_NOTICE,
    CALLER_ACK,
    CALLER_RESOLVED,
    CALLER_TICKET,
    DIGEST,
    PAGE,
    SUMMARY,
)
from tickets.urgent import OUTCOME_RANK

LINES = (OFFICE, EMERGENCY)
CALL_OUTCOMES = (
    *(outcome for outcome in OUTCOME_RANK if outcome != "in_progress"),
    *EMERGENCY_WITHOUT_TICKET,
    *OFFICE_OUTCOMES,
    OUTAGE,
    FAILED,
)
MESSAGE_KINDS = (
    PAGE,
    ACK_NOTICE,
    SUMMARY,
    DIGEST,
    CALLER_TICKET,
    CALLER_ACK,
    CALLER_RESOLVED,
    CALLER_INCIDENT,
    CALLER_INCIDENT_END,
    INCIDENT_DIGEST,
    CALL_BACK,
)
# Rota levels get their own label value up to here; the configured engineers are "configured".
HIGHEST_LEVEL = 10
CONFIGURED = "configured"
ANSWERS = ("accepted", "declined", "silent")
HELPDESK_TYPES = (*EVENT_TYPES, TEST)

CALLS = Counter(
    "ivr_calls",
    "Calls that ended, by the line whose number was called and how the call went.",
    ["line", "outcome"],
)
WEBHOOK_SECONDS = Histogram(
    "ivr_webhook_duration_seconds",
    "Time from a whole webhook request having arrived to its answer, by Flask endpoint.",
    ["webhook"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ENGINEERS_RUNG = Counter(
    "ivr_engineers_rung",
    "Engineers' phones rung for emergency calls, by rota level ('configured': no rota).",
    ["level"],
)
ENGINEER_ANSWERS = Counter(
    "ivr_engineer_answers",
    "Engineers who answered the screening: accepted with 1, declined, or pressed nothing.",
    ["level", "answer"],
)
MESSAGES_SENT = Counter(
    "ivr_messages_sent",
    "Messages (pages, notices, callers' SMS) the provider took, by channel and kind.",
    ["channel", "kind"],
)
MESSAGES_FAILED = Counter(
    "ivr_messages_failed",
    "Failed attempts to send a message; final='true' when it was given up.",
    ["channel", "kind", "final"],
)


def level_label(level: int | None) -> str:
    """Return the label of a rota level; 0 or None is the configured engineers."""
    if not level:
        return CONFIGURED
    return str(level) if 0 < level <= HIGHEST_LEVEL else OTHER


def count_call(line: str, outcome: str) -> None:
    """Count one call that ended."""
    CALLS.labels(line=bounded(line, LINES), outcome=bounded(outcome, CALL_OUTCOMES)).inc()


def observe_webhook(endpoint: str, seconds: float) -> None:
    """Record how long one webhook took."""
    WEBHOOK_SECONDS.labels(webhook=endpoint).observe(seconds)


def count_engineers_rung(level: int | None, engineers: int) -> None:
    """Count the engineers' phones one `<Dial>` rings."""
    if engineers:
        ENGINEERS_RUNG.labels(level=level_label(level)).inc(engineers)


def count_engineer_answer(level: int | None, digits: str | None) -> None:
    """Count an engineer's answer to the screening question."""
    answer = "accepted" if digits == "1" else "declined" if digits else "silent"
    ENGINEER_ANSWERS.labels(level=level_label(level), answer=answer).inc()


def count_message(channel: str, kind: str, *, sent: bool, final: bool = False) -> None:
    """Count a message the provider took, or a failed attempt (final: given up)."""
    channel, kind = bounded(channel, MESSAGE_CHANNELS), bounded(kind, MESSAGE_KINDS)
    if sent:
        MESSAGES_SENT.labels(channel=channel, kind=kind).inc()
    else:
        MESSAGES_FAILED.labels(channel=channel, kind=kind, final=str(final).lower()).inc()


HELPDESK_DELIVERED = Counter(
    "ivr_helpdesk_deliveries",
    "Helpdesk events a receiver accepted (2xx), by receiver name and event type.",
    ["receiver", "type"],
)
HELPDESK_FAILED = Counter(
    "ivr_helpdesk_delivery_failures",
    "Failed attempts to deliver a helpdesk event, by receiver name, event type and reason "
    "(gone, http_429, http_5xx, http_4xx, http_3xx, timeout, connection, refused_address); "
    "final='true' when the event was given up.",
    ["receiver", "type", "reason", "final"],
)
HELPDESK_REASONS = (
    "gone",
    "http_429",
    "http_5xx",
    "http_4xx",
    "http_3xx",
    "timeout",
    "connection",
    "refused_address",
)


def count_helpdesk_delivery(
    receiver: str,
    type: str,
    *,
    receivers: tuple[str, ...],
    reason: str | None = None,
    final: bool = False,
) -> None:
    """Count a delivered helpdesk event, or a failed attempt (reason; final: given up).

    `receivers` are the configured names: the label never carries a URL or anything else.
    """
    receiver, type = bounded(receiver, receivers), bounded(type, HELPDESK_TYPES)
    if reason is None:
        HELPDESK_DELIVERED.labels(receiver=receiver, type=type).inc()
        return
    HELPDESK_FAILED.labels(
        receiver=receiver,
        type=type,
        reason=bounded(reason, HELPDESK_REASONS),
        final=str(final).lower(),
    ).inc()
