"""Take a voicemail on the emergency line, and keep recordings of bridged calls."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.voice_response import VoiceResponse

from core.clock import utcnow
from core.settings import Settings
from ivr import params
from ivr.emergency.state import find_call, say_ticket
from ivr.flow import Hours, action_url, goodbye, guarded, note
from ivr.hours import describe_hours
from ivr.prompts import Speaker
from tickets.urgent import outcomes, timeline


def offer_voicemail(settings: Settings, speak: Speaker, response: VoiceResponse) -> VoiceResponse:
    """Record a message for the engineers; the recording's action stores it on the ticket."""
    response.record(
        action=action_url("emergency.voicemail", lang=speak.language),
        method="POST",
        max_length=settings.emergency.voicemail_max_seconds,
        finish_on_key="#",
        play_beep=True,
    )
    # Reached only when nothing was recorded: Twilio then skips the action.
    return goodbye(response, speak, "voicemail_empty")


class LineHours:
    """The emergency line's hours at this moment, with support's override, asked once a call."""

    def __init__(self, settings: Settings) -> None:
        self.hours = Hours.current(settings)
        self.schedule = settings.schedule_for(settings.emergency.schedule)
        self.open = self.hours.is_open(self.schedule)

    @property
    def now(self):
        """Return the moment the hours were asked at."""
        return self.hours.now


def closed_voicemail(
    settings: Settings, speak: Speaker, response: VoiceResponse, line: LineHours
) -> VoiceResponse:
    """Say the line is closed, its hours and when it opens, then take a voicemail."""
    speak.say(
        response,
        "emergency_closed",
        hours=describe_hours(line.schedule, speak),
        next_open=line.hours.next_open(line.schedule, speak),
    )
    return offer_voicemail(settings, speak, response)


def take_voicemail(settings: Settings, form: Mapping[str, str], *, language: str) -> VoiceResponse:
    """Store the caller's voicemail on the ticket, thank them and hang up."""
    speak = Speaker.for_language(settings, language)
    response = VoiceResponse()
    call = find_call(form.get("CallSid"))
    url = params.recording_url(form.get("RecordingUrl"))
    if call is None or url is None:
        return goodbye(response, speak, "voicemail_empty")
    guarded(
        outcomes.record_voicemail,
        context=url,
        call=call,
        recording_url=url,
        recording_sid=params.sid(form.get("RecordingSid")),
        duration=params.whole_number(form.get("RecordingDuration")),
        now=utcnow(),
    )
    note(call.sid, "voicemail")
    say_ticket(speak, response, call)
    return goodbye(response, speak, "emergency_voicemail_thanks")


def store_recording(form: Mapping[str, str], *, call_sid: str | None) -> None:
    """Store the recording of a bridged emergency call on its ticket call."""
    status = params.call_status(form.get("RecordingStatus") or "completed")
    url = params.recording_url(form.get("RecordingUrl"))
    if status != "completed" or url is None:
        return
    call = find_call(form.get("CallSid")) or find_call(call_sid)
    if call is None:
        return
    guarded(
        timeline.record_call_recording,
        context=url,
        call=call,
        recording_url=url,
        recording_sid=params.sid(form.get("RecordingSid")),
        duration=params.whole_number(form.get("RecordingDuration")),
        now=utcnow(),
    )
