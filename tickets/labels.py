"""The readable names staff see for statuses, reasons, roles, events, outcomes and hour modes."""

from __future__ import annotations

STATUS_LABELS = {
    "new": "New",
    "in_progress": "In progress",
    "waiting_for_customer": "Waiting for the customer",
    "with_product_team": "With the product team",
    "planned": "Planned for release",
    "resolved": "Resolved",
    "closed": "Closed",
}
REASON_LABELS = {"outage": "Major outage", "urgent_bug": "Urgent bug"}
ROLE_LABELS = {"user": "Normal user", "key_user": "Key user", "super_user": "Super user"}
HOURS_MODES = {"auto": "Follow the schedule", "open": "Force open", "closed": "Force closed"}
EVENT_LABELS = {
    "ticket_opened": "Ticket opened",
    "call_joined": "Call added to this ticket",
    "recognised": "Caller recognised",
    "unverified": "Caller not verified",
    "triage": "Triage",
    "description": "Spoken description",
    "engineer_rung": "Engineer rung",
    "engineer_refused": "Engineer did not accept",
    "engineer_accepted": "Engineer accepted",
    "engineers_unavailable": "No engineer available",
    "voicemail": "Voicemail left",
    "call_recorded": "Call recorded",
    "call_ended": "Call ended",
    "acknowledged": "Acknowledged",
    "assigned": "Assigned",
    "status": "Status changed",
    "category": "Category changed",
    "note": "Internal note",
    "time": "Time logged",
    "rate_approved": "Standard rate approved",
    "release_week": "Release week changed",
    "paged": "Engineers paged",
    "paging_exhausted": "Paging gave up: nobody acknowledged",
    "paging_waiting": "Paging waits (opening time, or the digest of unverified calls)",
    "caller_not_texted": "Caller not texted",
    "incident_joined": "Joined a major incident",
    "engineers_busy": "Every engineer was on a call",
    "incident_told": "Told the outage is known",
    "call_back_asked": "Asked to be called back",
    "call_back_started": "Call-back started",
    "call_back_ended": "Call-back ended",
}
MESSAGE_LABELS = {
    "page": "Page",
    "ack_notice": "Acknowledged notice",
    "summary": "Opening summary",
    "digest": "Digest of unverified calls",
    "caller_ticket": "Ticket number to the caller",
    "caller_ack": "Acknowledgement to the caller",
    "caller_resolved": "Resolution to the caller",
    "incident_digest": "Digest of organisations that joined",
    "caller_incident": "Incident update to the caller",
    "caller_incident_end": "Incident resolution to the caller",
    "call_back": "Call-back: the engineer's phone rings first",
}
INCIDENT_UPDATE_LABELS = {
    "opened": "Opened",
    "joined": "Organisation joined",
    "acknowledged": "Acknowledged",
    "update": "Update",
    "resolved": "Resolved",
    "digest": "Digest to level 1",
}
DELIVERY_LABELS = {
    "pending": "Waiting to be sent",
    "sending": "Sending",
    "sent": "Sent",
    "delivered": "Delivered",
    "failed": "Failed",
    "cancelled": "Not sent (acknowledged or no longer needed)",
}
OUTCOME_LABELS = {
    "in_progress": "In progress",
    "answered": "Answered by an engineer",
    "voicemail": "Voicemail",
    "abandoned_before_triage": "Caller hung up before triage",
    "abandoned_after_triage": "Caller hung up after triage",
    "abandoned_while_ringing": "Caller hung up while engineers rang",
    "refused": "No engineer accepted",
    "no_answer": "No answer",
    "call_back": "Asked to be called back",
    "informed": "Told the outage is known",
}
# The statistics group outcomes (tickets.statistics.figures.OUTCOME_GROUPS); short for legends.
OUTCOME_GROUP_LABELS = {
    "answered": "Answered",
    "voicemail": "Voicemail",
    "refused": "No engineer accepted",
    "no_answer": "No answer",
    "abandoned": "Caller hung up",
    "call_back": "Call-back asked",
    "informed": "Told of the outage",
    "in_progress": "In progress",
}


LINE_LABELS = {
    "emergency": "Emergency line",
    "office": "Office line",
    "call_back": "Call-back through the emergency line",
}


def line_label(line: str) -> str:
    """Return the readable name of the line a call was on (a call-back is one of its own)."""
    return LINE_LABELS.get(line, line.replace("_", " ").capitalize() + " line")


def status_label(status: str) -> str:
    """Return the readable name of a status."""
    return STATUS_LABELS.get(status, status)


def reason_label(reason: str | None) -> str:
    """Return the readable name of an emergency reason."""
    return REASON_LABELS.get(reason or "", reason or "—")


def role_label(role: str | None) -> str:
    """Return the readable name of a contact's role."""
    return ROLE_LABELS.get(role or "", role or "—")


def event_label(kind: str) -> str:
    """Return the readable name of a timeline event."""
    return EVENT_LABELS.get(kind, kind.replace("_", " ").capitalize())


def outcome_label(outcome: str) -> str:
    """Return the readable name of a call's outcome."""
    return OUTCOME_LABELS.get(outcome, outcome)


def outcome_group_label(group: str) -> str:
    """Return the readable name of a group of call outcomes in the statistics."""
    return OUTCOME_GROUP_LABELS.get(group, group)


def message_label(kind: str) -> str:
    """Return the readable name of a kind of message (page, notice, caller update)."""
    return MESSAGE_LABELS.get(kind, kind)


def incident_update_label(kind: str) -> str:
    """Return the readable name of an entry of an incident's timeline."""
    return INCIDENT_UPDATE_LABELS.get(kind, kind)


def delivery_label(status: str) -> str:
    """Return the readable state of a message: waiting, sent, delivered, failed."""
    return DELIVERY_LABELS.get(status, status)
