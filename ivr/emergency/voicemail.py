"""Take a voicemail on the emergency line, transcribe it, and keep recordings of bridged calls.

The voicemail is transcribed by Twilio's real-time transcription (`<Start><Transcription>`) in
the call's language, since `<Record transcribe>` knows English only. Twilio posts the results
to `/voice/emergency/transcript`: `transcription-content` events carry the caller's words
(`TranscriptionData`, JSON with `transcript` and `confidence`, once `Final`), and
`transcription-stopped` (or `-error`) says the transcript is complete, which lets the pages
about the ticket go out at once instead of after their wait.
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.voice_response import VoiceResponse

from core.clock import utcnow
from core.settings import Settings
from ivr import params
from ivr.emergency.state import find_call, say_ticket
from ivr.flow import Hours, absolute_url, action_url, goodbye, guarded, note
from ivr.hours import describe_hours
from ivr.prompts import Speaker
from tickets import transcripts
from tickets.models import TicketCall
from tickets.urgent import outcomes, timeline

# The name our <Transcription> goes by, so <Stop> ends that one.
TRANSCRIPT_NAME = "voicemail"
CONTENT = "transcription-content"
STOPPED = "transcription-stopped"
ERROR = "transcription-error"


def offer_voicemail(
    settings: Settings, speak: Speaker, response: VoiceResponse, call: TicketCall | None = None
) -> VoiceResponse:
    """Record a message for the engineers; the recording's action stores it on the ticket."""
    if call is not None:
        transcribe(settings, speak, response, call)
    response.record(
        action=action_url("emergency.voicemail", lang=speak.language),
        method="POST",
        max_length=settings.emergency.voicemail_max_seconds,
        finish_on_key="#",
        play_beep=True,
    )
    # Reached only when nothing was recorded: Twilio then skips the action.
    return goodbye(response, speak, "voicemail_empty")


def transcribe(
    settings: Settings, speak: Speaker, response: VoiceResponse, call: TicketCall
) -> None:
    """Start transcribing what the caller says, in the call's language, before the beep."""
    config = settings.emergency.transcription
    language = config.languages.get(speak.language)
    if not config.enabled or not language:
        return
    start = response.start()
    start.transcription(
        name=TRANSCRIPT_NAME,
        status_callback_url=absolute_url("emergency.transcript"),
        status_callback_method="POST",
        language_code=language,
        transcription_engine=config.engine,
        # The caller only: what they hear (our prompts) is not what they said.
        track="inbound_track",
        partial_results=False,
    )
    guarded(transcripts.start_transcript, call=call)


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
    settings: Settings, speak: Speaker, response: VoiceResponse, line: LineHours, call: TicketCall
) -> VoiceResponse:
    """Say the line is closed, its hours and when it opens, then take a voicemail.

    The call's timeline says so, so a caller who leaves no message is not counted as one who
    hung up.
    """
    speak.say(
        response,
        "emergency_closed",
        hours=describe_hours(line.schedule, speak),
        next_open=line.hours.next_open(line.schedule, speak),
    )
    guarded(outcomes.record_line_closed, call=call, now=line.now)
    return offer_voicemail(settings, speak, response, call)


def take_voicemail(settings: Settings, form: Mapping[str, str], *, language: str) -> VoiceResponse:
    """Store the caller's voicemail on the ticket, thank them and hang up."""
    speak = Speaker.for_language(settings, language)
    response = VoiceResponse()
    call = find_call(form.get("CallSid"))
    url = params.recording_url(form.get("RecordingUrl"))
    if call is not None and call.transcript_state is not None:
        # The message is over: what follows is not the caller's, and the transcript completes.
        response.stop().transcription(name=TRANSCRIPT_NAME)
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


def take_transcript(form: Mapping[str, str]) -> None:
    """Store a real-time transcription callback on the call; a complete one hurries the pages."""
    call = find_call(form.get("CallSid"))
    event = params.text(form.get("TranscriptionEvent"), 40)
    if call is None or event not in (CONTENT, STOPPED, ERROR):
        return
    if event == CONTENT:
        utterance = params.transcription_data(form.get("TranscriptionData"))
        final = params.text(form.get("Final"), 10).lower() == "true"
        inbound = params.text(form.get("Track"), 20) in ("", "inbound_track")
        if utterance is not None and final and inbound:
            guarded(
                transcripts.add_transcript,
                call=call,
                text=utterance.text,
                confidence=utterance.confidence,
                sequence=params.whole_number(form.get("SequenceId")),
            )
        return
    failed = None
    if event == ERROR:
        failed = params.text(form.get("TranscriptionError"), 200) or "the engine failed"
    if guarded(transcripts.finish_transcript, call=call, failed=failed, now=utcnow()):
        guarded(transcripts.transcript_complete, ticket_id=call.ticket_id, now=utcnow())


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
