"""Read one webhook without the database: its line, its leg, and what it tells the journal.

Webhooks are told apart by their Flask endpoint ("blueprint.function"), never by their URL
path: the endpoint names are the contract between the call flows and the outage machinery,
so moving a URL cannot silently change how a call is served during an outage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.settings import Settings
from ivr import params
from ivr.lines import EMERGENCY, OFFICE, line_for_number
from tickets.models import REASONS

# The blueprint of the webhooks that never touch the database (fallback and outage TwiML).
OUTAGE_BLUEPRINT = "outage"
STATUS_ENDPOINT = "voice.status"
# The webhooks of a call-back's call (`ivr.emergency.call_back_routes`): no caller to serve.
CALL_BACK_BLUEPRINT = "call_back"
TRIAGE_ENDPOINT = "emergency.triage"
# The triage key of a caller who goes on without a confirmed PIN (never a PIN itself).
UNVERIFIED_TRIAGE_ENDPOINT = "emergency.unverified"
TRIAGE_ENDPOINTS = frozenset({TRIAGE_ENDPOINT, UNVERIFIED_TRIAGE_ENDPOINT})
DESCRIPTION_ENDPOINT = "emergency.description"
OUTAGE_VOICEMAIL_ENDPOINT = "outage.voicemail"
UNVERIFIED_ACCEPT_ENDPOINT = "outage.fallback_accept"
# Screening webhooks of an unverified emergency call (those of the fallback dial).
UNVERIFIED_SCREENING_ENDPOINTS = frozenset({"outage.fallback_screen", UNVERIFIED_ACCEPT_ENDPOINT})
# Webhooks of a leg our `<Dial>` placed to an engineer, whatever its form says.
ENGINEER_LEG_ENDPOINTS = UNVERIFIED_SCREENING_ENDPOINTS | {
    "emergency.screen_engineer",
    "emergency.accept_engineer",
}

# One journal entry: (kind, call sid, step, data).
Event = tuple[str, str, str, dict]


@dataclass(frozen=True)
class Webhook:
    """One webhook as the outage machinery reads it: endpoint, path, query and form."""

    endpoint: str | None
    path: str
    args: Mapping
    form: Mapping

    @property
    def blueprint(self) -> str | None:
        """Return the blueprint the webhook's endpoint belongs to."""
        if not self.endpoint or "." not in self.endpoint:
            return None
        return self.endpoint.split(".", 1)[0]

    @property
    def is_outage_webhook(self) -> bool:
        """Return whether one of our own database-free outage webhooks was called."""
        return self.blueprint == OUTAGE_BLUEPRINT


def line_of_request(settings: Settings, hook: Webhook) -> str:
    """Return the line a webhook belongs to, from our own endpoint or else the called number."""
    if hook.blueprint == EMERGENCY or hook.endpoint in UNVERIFIED_SCREENING_ENDPOINTS:
        return EMERGENCY
    if hook.blueprint == OFFICE:
        return OFFICE
    to = params.caller_id(hook.form.get("To"))
    if to in {engineer.number for engineer in settings.emergency.engineers}:
        return EMERGENCY
    return line_for_number(settings, hook.form.get("To"))


def outage_line(settings: Settings, hook: Webhook) -> str:
    """Return the `line` our own outage URLs carry, else the line of the endpoint or number."""
    line = hook.args.get("line")
    if hook.is_outage_webhook and line in (OFFICE, EMERGENCY):
        return line
    return line_of_request(settings, hook)


def is_engineer_leg(hook: Webhook) -> bool:
    """Return whether a webhook is for a leg our `<Dial>` placed, not the caller's own leg.

    Our screening webhooks count as such whatever the form says: a screened leg must never be
    sent a `<Dial>`.
    """
    if hook.endpoint in ENGINEER_LEG_ENDPOINTS:
        return True
    form = hook.form
    return (form.get("Direction") or "").startswith("outbound") or bool(form.get("ParentCallSid"))


def is_status_callback(hook: Webhook) -> bool:
    """Return whether a webhook only reports progress (its answer is not TwiML for a caller)."""
    return (
        hook.endpoint == STATUS_ENDPOINT
        or bool(hook.form.get("RecordingStatus"))
        or bool(hook.form.get("TranscriptionStatus"))
    )


def call_status(hook: Webhook) -> str:
    """Return the call status a webhook reports, lower case ('' when none)."""
    return params.call_status(hook.form.get("CallStatus"))


# ---------------------------------------------------------------- what the journal keeps


def journal_events(settings: Settings, hook: Webhook) -> list[Event]:
    """Return the journal entries one webhook stands for.

    Never the keys a caller typed (they may be a PIN), except a triage choice.
    """
    if hook.blueprint == CALL_BACK_BLUEPRINT:
        return []  # a call-back not made now goes back in the queue; nothing to replay
    sid = params.sid(hook.form.get("CallSid"))
    line = outage_line(settings, hook)
    if is_engineer_leg(hook):
        return _answered_events(hook, sid, line)
    if sid is None:
        return []
    events: list[Event] = []
    if not is_status_callback(hook):
        # Only a caller still being served stands for a call to record (a status callback
        # can be the end of a call that was refused, say to a normal user, before the outage).
        events.append(("call", sid, "call", _call_details(settings, hook, line)))
    events += _triage_events(hook, sid)
    events += _dial_events(hook, sid, line)
    events += _recording_events(hook, sid, line)
    events += _status_events(hook, sid, line)
    return events


def _answered_events(hook: Webhook, sid: str | None, line: str) -> list[Event]:
    """Return the entry of an engineer who pressed 1 on an emergency call, if one did."""
    form = hook.form
    parent, digits = params.sid(form.get("ParentCallSid")), (form.get("Digits") or "").strip()
    if not (parent and sid and line == EMERGENCY and digits == "1"):
        return []
    engineer = {"engineer": form.get("To"), "ticket": hook.args.get("ticket")}
    return [("answered", parent, f"answered:{sid}", engineer)]


def _call_details(settings: Settings, hook: Webhook, line: str) -> dict:
    """Return what we know about a call from one webhook, for the journal (never Digits)."""
    form, args = hook.form, hook.args
    return {
        "line": line,
        "from": form.get("From"),
        "caller": params.caller_id(form.get("From")),
        "to": form.get("To"),
        "language": params.language(settings, args.get("lang")),
        "via": args.get("via"),
        "ticket": args.get("ticket"),
        "path": hook.path,
        "error_code": form.get("ErrorCode"),
    }


def _triage_events(hook: Webhook, sid: str) -> list[Event]:
    """Return the reason and the spoken description an emergency caller gave."""
    events: list[Event] = []
    reason = hook.args.get("reason") if hook.args.get("reason") in REASONS else None
    if hook.endpoint in TRIAGE_ENDPOINTS:
        reason = params.triage_reason(hook.form.get("Digits")) or reason
    if reason is not None:
        events.append(("reason", sid, "reason", {"reason": reason}))
    if hook.endpoint == DESCRIPTION_ENDPOINT:
        description = params.speech(hook.form.get("SpeechResult"))
        if description:
            events.append(("description", sid, "description", {"text": description}))
    return events


def _dial_events(hook: Webhook, sid: str, line: str) -> list[Event]:
    """Return what a `<Dial>` came to, when the webhook reports one."""
    form = hook.form
    if not form.get("DialCallStatus"):
        return []
    dial = {
        "status": form.get("DialCallStatus"),
        "dial_sid": form.get("DialCallSid"),
        "duration": form.get("DialCallDuration"),
        "bridged": form.get("DialBridged"),
        "line": line,
    }
    step = form.get("DialCallSid") or form.get("DialCallStatus")
    return [("dial", sid, f"dial:{step}", dial)]


def _recording_events(hook: Webhook, sid: str, line: str) -> list[Event]:
    """Return a voicemail or the recording of a conversation, when the webhook has one."""
    form, args = hook.form, hook.args
    if not form.get("RecordingUrl"):
        return []
    recording = {
        "url": form.get("RecordingUrl"),
        "recording_sid": form.get("RecordingSid"),
        "duration": form.get("RecordingDuration"),
        "status": form.get("RecordingStatus"),
        "line": line,
        "department": args.get("dept"),
        "hours": args.get("hours"),
    }
    step = form.get("RecordingSid") or form.get("RecordingUrl")
    kind = "recording" if form.get("RecordingStatus") else "voicemail"
    # Our own recording callbacks name the call they belong to.
    owner = (params.sid(args.get("call")) if kind == "recording" else None) or sid
    return [(kind, owner, f"{kind}:{step}", recording)]


def _status_events(hook: Webhook, sid: str, line: str) -> list[Event]:
    """Return the call's status when the webhook reports its progress or its end."""
    status = call_status(hook)
    if hook.endpoint != STATUS_ENDPOINT and not params.is_final(status):
        return []
    details = {
        "status": status,
        "duration": hook.form.get("CallDuration"),
        "sequence": hook.form.get("SequenceNumber"),
        "line": line,
    }
    return [("status", sid, f"status:{status}", details)]
