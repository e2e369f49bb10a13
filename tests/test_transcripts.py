"""Dutch transcripts of emergency voicemails: on the ticket and in the pages.

Twilio's real-time transcription (`<Start><Transcription>`) transcribes in the call's language
and posts its results to a signed webhook; the pages about the ticket wait for the transcript,
at most `emergency.transcription.wait_seconds`, as a time on the page's row. The terminal
telephone (`ivr call`) plays Twilio's part here, callbacks included; the pages go out through
the real clients to the Twilio stand-in and a local SMTP server.
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from helpers import AUTH_TOKEN, EMERGENCY_NUMBER, PUBLIC_URL
from message_servers import MailServer
from sqlalchemy import select
from support_helpers import make_staff, sign_in

from bench.standin import TwilioStandIn
from ivr.messaging.sender import tick
from ivr.phone.answers import Answers
from ivr.phone.telephone import Telephone
from ivr.phone.transport import ClientTransport
from tickets.models import Contact, ContactPhone, Organization, Page, StaffUser, TicketCall
from tickets.rota import add_override

ACCOUNT_SID = "AC" + "6" * 32
SMS_FROM = "+31612340000"
CALLER = "+31611110000"
ANNA = "+31620000001"
SAID = "De omgeving is onbereikbaar, niemand kan inloggen sinds tien uur."


@pytest.fixture(scope="module")
def twilio():
    standin = TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    yield standin
    standin.stop()


@pytest.fixture(scope="module")
def mail():
    server = MailServer().start()
    yield server
    server.stop()


@pytest.fixture
def settings_overrides(twilio, mail):
    twilio.sent.clear()
    mail.messages.clear()
    return {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_api_url": twilio.url,
        "paging.sms_from": SMS_FROM,
        "paging.smtp_url": mail.url,
        "oncall.rounds": 1,
    }


@pytest.fixture
def anna(session, clock):
    acme = Organization(name="Acme Uitzendbureau")
    sanne = Contact(
        organization=acme, name="Sanne Visser", email="s@acme.example", role="super_user"
    )
    sanne.phones.append(ContactPhone(number=CALLER))
    anna = StaffUser(email="anna@otys.test", name="Anna Jansen", password_hash="x", phone=ANNA)
    session.add_all([acme, anna])
    session.commit()
    add_override(
        session,
        level=1,
        staff=anna,
        starts_at=clock.now - timedelta(hours=1),
        ends_at=clock.now + timedelta(days=1),
        added_by="test",
    )
    return anna


def call_with_voicemail(client, keys: list[str]) -> tuple[list[str], str]:
    """Place an emergency call with the terminal telephone; return its transcript and sid."""
    lines: list[str] = []
    telephone = Telephone(
        transport=ClientTransport(client),
        auth_token=AUTH_TOKEN,
        base_url="http://localhost",
        public_url=PUBLIC_URL,
        answers=Answers(keys),
        echo=lines.append,
    )
    result = telephone.call(to=EMERGENCY_NUMBER, from_=CALLER)
    assert result.exit_code == 0, "\n".join(lines)
    return lines, result.sid


def ticket_call(session, sid: str) -> TicketCall:
    session.expire_all()
    return session.scalars(select(TicketCall).where(TicketCall.sid == sid)).one()


def test_a_dutch_voicemail_is_transcribed_onto_the_ticket_and_into_the_pages(
    app, client, session, anna, twilio, mail
):
    # Outage; Anna's phone rings and she does not press 1; the caller leaves a voicemail.
    lines, sid = call_with_voicemail(client, ["1", "-", f"rec:{SAID}"])
    assert "  [transcribing what is said, nl-NL]" in lines
    call = ticket_call(session, sid)
    assert call.outcome == "voicemail"
    assert call.transcription == SAID
    assert call.transcript_state == "done"
    assert call.transcript_confidence == pytest.approx(0.91)
    number = call.ticket.number

    # The transcript was in before the call ended: the page went out at once, with it.
    tick(app)
    [sms] = twilio.to(ANNA)
    assert f"Voicemail: {SAID}" in sms.body
    [email] = mail.to("anna@otys.test")
    assert SAID in email.get_payload(decode=True).decode()

    # The engineer opens the ticket from the page's link and reads what was said first.
    make_staff(session)
    sign_in(client)
    html = client.get(f"/support/tickets/{number}").get_data(as_text=True)
    start = html.index('id="summary"')
    summary = html[start : html.index("</section>", start)]
    assert SAID in summary
    assert "Acme Uitzendbureau" in summary and "Sanne Visser" in summary
    assert "Acknowledge &amp; assign to me" in summary


def test_the_transcript_webhook_takes_twilio_s_parameters(app, client, session, anna, phone):
    call = phone(to=EMERGENCY_NUMBER, from_=CALLER)
    root = call.press(call.start(), "2")
    voicemail = call.dial_result(root, "no-answer")
    transcription = voicemail.find("Start/Transcription")
    assert transcription.get("languageCode") == "nl-NL"
    assert transcription.get("track") == "inbound_track"
    assert transcription.get("transcriptionEngine") == "google"
    callback = transcription.get("statusCallbackUrl")
    assert callback == f"{PUBLIC_URL}/voice/emergency/transcript"
    path = urlsplit(callback).path
    assert voicemail.find("Record") is not None

    def event(name: str, **params):
        call.post_raw(path, TranscriptionEvent=name, TranscriptionSid="GT" + "1" * 32, **params)

    event("transcription-started")
    data = json.dumps({"transcript": "Wij kunnen niet inloggen.", "confidence": 0.8})
    event("transcription-content", TranscriptionData=data, Final="false", SequenceId="2")
    event("transcription-content", TranscriptionData=data, Final="true", SequenceId="3")
    event("transcription-content", TranscriptionData=data, Final="true", SequenceId="3")  # retry
    more = json.dumps({"transcript": "Bel me terug.", "confidence": 0.95})
    event("transcription-content", TranscriptionData=more, Final="true", SequenceId="4")
    event("transcription-content", TranscriptionData="{not json", Final="true", SequenceId="5")
    row = ticket_call(session, call.sid)
    assert row.transcription == "Wij kunnen niet inloggen. Bel me terug."
    assert row.transcript_confidence == pytest.approx(0.8)
    assert row.transcript_state == "transcribing"
    event("transcription-stopped", SequenceId="6")
    assert ticket_call(session, call.sid).transcript_state == "done"


def test_an_english_call_is_transcribed_in_english(app, session, anna, phone):
    call = phone(to=EMERGENCY_NUMBER, from_=CALLER)
    root = call.press(call.start(), "1")
    action = root.find("Dial").get("action").replace("lang=nl", "lang=en")
    voicemail = call.post(action, DialCallStatus="no-answer")
    assert voicemail.find("Start/Transcription").get("languageCode") == "en-US"


def test_pages_wait_for_the_transcript_and_go_once_it_is_in(
    app, session, anna, phone, clock, twilio
):
    call = phone(to=EMERGENCY_NUMBER, from_=CALLER)
    voicemail = call.dial_result(call.press(call.start(), "1"), "no-answer")
    call.post(
        voicemail.find("Record").get("action"),
        RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
        RecordingSid="RE" + "1" * 32,
        RecordingDuration="14",
    )
    call.hang_up(duration="60")
    page = session.scalars(select(Page)).one()
    assert (page.state, page.level) == ("active", 0)
    assert page.next_step_at == clock.now + timedelta(seconds=30)
    tick(app)
    assert twilio.to(ANNA) == []  # waiting for the transcript, not sleeping

    path = "/voice/emergency/transcript"
    data = json.dumps({"transcript": "Alles ligt eruit.", "confidence": 0.9})
    call.post_raw(path, TranscriptionEvent="transcription-content", TranscriptionData=data,
                  Final="true", SequenceId="1")  # fmt: skip
    tick(app)
    assert twilio.to(ANNA) == []  # one utterance is not the whole message
    call.post_raw(path, TranscriptionEvent="transcription-stopped", SequenceId="2")
    session.expire_all()
    assert session.scalars(select(Page)).one().next_step_at <= clock.now
    tick(app)
    [sms] = twilio.to(ANNA)
    assert "Voicemail: Alles ligt eruit." in sms.body


def leave_voicemail(call, voicemail) -> None:
    call.post(
        voicemail.find("Record").get("action"),
        RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
        RecordingSid="RE" + "1" * 32,
        RecordingDuration="14",
    )


def test_without_a_transcript_the_pages_go_after_the_bound(
    app, session, anna, phone, clock, twilio
):
    call = phone(to=EMERGENCY_NUMBER, from_=CALLER)
    leave_voicemail(call, call.dial_result(call.press(call.start(), "1"), "no-answer"))
    call.hang_up(duration="60")
    tick(app)
    assert twilio.to(ANNA) == []
    clock.now += timedelta(seconds=31)
    tick(app)
    [sms] = twilio.to(ANNA)
    assert "Voicemail" not in sms.body
    assert "urgent ticket" in sms.body.lower()


def test_a_caller_who_left_no_message_is_paged_at_once(app, session, anna, phone, twilio):
    call = phone(to=EMERGENCY_NUMBER, from_=CALLER)
    call.dial_result(call.press(call.start(), "1"), "no-answer")
    call.hang_up(duration="40")  # hung up at the beep: no words to wait for
    tick(app)
    assert len(twilio.to(ANNA)) == 1


def test_a_failed_transcription_sends_the_pages_at_once(app, session, anna, phone, twilio):
    call = phone(to=EMERGENCY_NUMBER, from_=CALLER)
    leave_voicemail(call, call.dial_result(call.press(call.start(), "1"), "no-answer"))
    call.hang_up(duration="60")
    tick(app)
    assert twilio.to(ANNA) == []
    call.post_raw(
        "/voice/emergency/transcript",
        TranscriptionEvent="transcription-error",
        TranscriptionError="engine unavailable",
    )
    assert ticket_call(session, call.sid).transcript_state == "failed"
    tick(app)
    assert len(twilio.to(ANNA)) == 1


def test_an_unsigned_transcript_is_refused(client, session, anna):
    response = client.post(
        "/voice/emergency/transcript",
        data={"CallSid": "CA" + "2" * 32, "TranscriptionEvent": "transcription-stopped"},
    )
    assert response.status_code == 403
