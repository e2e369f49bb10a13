"""The readable names staff see for every code: statuses, reasons, roles, events, outcomes, ...

The one place labels live. The dashboard shows no code of ours without passing it through
here; the timeline's details, written as codes when they happened, are read here too
(`event_detail`), so old rows read as well as new ones.
"""

from __future__ import annotations

import re

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
    "paging_transcript": "Paging waits for the voicemail's transcript",
    "not_paged": "Nobody was paged",
    "line_closed": "Line closed: voicemail offered",
    "transcribed": "Voicemail transcribed",
    "journal": "From the outage journal",
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
    "test_page": "Test page",
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
    "closed_no_message": "Line closed, no message left",
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
    "closed": "Closed, no message",
    "call_back": "Call-back asked",
    "informed": "Told of the outage",
    "in_progress": "In progress",
}
CATEGORY_LABELS = {"bug": "Bug", "question": "Question", "other": "Other"}
PRIORITY_LABELS = {"urgent": "Urgent", "high": "High", "normal": "Normal", "low": "Low"}
SOURCE_LABELS = {"phone": "Phone call", "api": "API", "email": "E-mail", "web": "Web"}
CHANNEL_LABELS = {"sms": "SMS", "email": "E-mail", "chat": "Chat"}
STAFF_ROLE_LABELS = {"agent": "Agent", "admin": "Admin"}
TRIAGE_DETAILS = {"unknown": "no usable choice"}
AUDIT_LABELS = {
    "staff_added": "Account added",
    "staff_changed": "Account changed",
    "staff_deactivated": "Account deactivated",
    "staff_reactivated": "Account reactivated",
    "staff_password_reset": "Password reset",
    "staff_token_issued": "API token issued",
    "staff_token_revoked": "API token revoked",
    "staff_tokens_revoked": "Every API token revoked",
    "hours_override": "Working hours changed",
    "announcement_posted": "Announcement posted",
    "announcement_ended": "Announcement ended",
    "oncall_override_added": "On-call override added",
    "oncall_override_removed": "On-call override removed",
    "pin_checks_paused": "PIN checks paused",
    "recording_played": "Recording played",
    "privacy_export": "Personal data exported",
    "privacy_erase": "Personal data erased",
    "retention_purge": "Retention purge",
}
# A Twilio recording's address: shown by its recording sid, the address is on the player.
_RECORDING = re.compile(r"https://\S*/Recordings/(RE[0-9A-Za-z]+)\S*")
_ROLE_IN_DETAIL = re.compile(r"\((user|key_user|super_user)\)")


LINE_LABELS = {
    "emergency": "Emergency line",
    "office": "Office line",
    "call_back": "Call-back through the emergency line",
}


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


def category_label(category: str | None) -> str:
    """Return the readable name of a ticket category."""
    return CATEGORY_LABELS.get(category or "", category or "—")


def priority_label(priority: str | None) -> str:
    """Return the readable name of a ticket priority."""
    return PRIORITY_LABELS.get(priority or "", priority or "—")


def source_label(source: str | None) -> str:
    """Return the readable name of where a ticket came from."""
    return SOURCE_LABELS.get(source or "", source or "—")


def line_label(line: str | None) -> str:
    """Return the readable name of the line a call was on (a call-back is one of its own)."""
    if not line:
        return "—"
    return LINE_LABELS.get(line, line.replace("_", " ").capitalize() + " line")


def channel_label(channel: str | None) -> str:
    """Return the readable name of a paging channel."""
    return CHANNEL_LABELS.get(channel or "", channel or "—")


def staff_role_label(role: str | None) -> str:
    """Return the readable name of a staff account's role."""
    return STAFF_ROLE_LABELS.get(role or "", role or "—")


def audit_label(action: str) -> str:
    """Return the readable name of a change on the audit trail."""
    return AUDIT_LABELS.get(action, action.replace("_", " ").capitalize())


def short_recording(url: str | None) -> str:
    """Return a recording's address as people read it: its recording sid, shortened."""
    match = _RECORDING.search(url or "")
    if match is None:
        return url or ""
    sid = match.group(1)
    return f"recording {sid[:6]}…{sid[-4:]}"


def _statuses(text: str) -> str:
    """Return "a → b" with both statuses (or categories) in words."""
    named = []
    for part in text.split("→"):
        code, space, rest = part.strip().partition(" ")
        word = STATUS_LABELS.get(code) or CATEGORY_LABELS.get(code) or code
        named.append(word + space + rest)
    return " → ".join(named)


def _call_ended(detail: str) -> str:
    outcome, _, seconds = detail.partition(", ")
    seconds = seconds.removesuffix(" s")
    after = f", after {seconds} s" if seconds.isdigit() else ""
    return outcome_label(outcome) + after


def event_detail(kind: str, detail: str | None) -> str:
    """Return a timeline event's detail in words: no status, reason, role or address codes."""
    if not detail:
        return ""
    if kind == "triage":
        return TRIAGE_DETAILS.get(detail, reason_label(detail))
    if kind == "call_ended":
        return _call_ended(detail)
    if kind in ("status", "category"):
        head, sep, rest = detail.partition(";")
        return _statuses(head) + (sep + rest if sep else "")
    detail = _ROLE_IN_DETAIL.sub(lambda match: f"({role_label(match.group(1))})", detail)
    return _RECORDING.sub(lambda match: short_recording(match.group(0)), detail)
