import json
import re

import pytest
from click.testing import CliRunner
from flask import Flask, Response, abort, request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from app.cli import main
from ivr.phone.answers import Answers, parse_script
from ivr.phone.numbers import called_number, calling_number
from ivr.phone.telephone import Telephone
from ivr.phone.transport import ClientTransport, Reply

TOKEN = "phone-test-token-0123456789"
PUBLIC = "https://ivr.example.test"
BASE = "http://127.0.0.1:8000"
OFFICE = "+31318584900"
CALLER = "+31612345678"
ENGINEER_1 = "+31318584941"
ENGINEER_2 = "+31318584942"
SID = re.compile(r"^CA[0-9a-f]{32}$")
RECORDING_URL = re.compile(
    r"^https://api\.twilio\.com/2010-04-01/Accounts/AC[0-9a-f]{32}/Recordings/RE[0-9a-f]{32}$"
)


def twiml(response: VoiceResponse) -> str:
    return str(response)


def say(text: str, language: str = "nl-NL") -> str:
    response = VoiceResponse()
    response.say(text, language=language)
    return twiml(response)


class Line:
    """A tiny Twilio-facing app serving fixed TwiML, refusing anything not signed with TOKEN."""

    def __init__(self, documents: dict):
        self.documents = documents
        self.received: list[tuple[str, str, dict, dict]] = []
        self.lines: list[str] = []
        self.app = self._build()

    def _build(self) -> Flask:
        app = Flask(__name__)
        validator = RequestValidator(TOKEN)

        @app.route("/<path:path>", methods=["GET", "POST"])
        def webhook(path):
            query = request.query_string.decode()
            url = PUBLIC + request.path + (f"?{query}" if query else "")
            signature = request.headers.get("X-Twilio-Signature", "")
            if not validator.validate(url, request.form, signature):
                abort(403)
            self.received.append(
                (request.method, request.path, request.args.to_dict(), request.form.to_dict())
            )
            document = self.documents.get(request.path)
            if isinstance(document, Response):
                return document
            if callable(document):
                document = document(request)
            if document is None:
                return ("", 204)
            return Response(document, mimetype="text/xml")

        return app

    def call(self, keys="", *, token=TOKEN, interactive=False, read=input, max_requests=60):
        telephone = Telephone(
            transport=ClientTransport(self.app.test_client()),
            auth_token=token,
            base_url=BASE,
            public_url=PUBLIC,
            answers=Answers(parse_script(keys), interactive=interactive, read=read),
            echo=self.lines.append,
            max_requests=max_requests,
        )
        return telephone.call(to=OFFICE, from_=CALLER)

    @property
    def transcript(self) -> str:
        return "\n".join(self.lines)

    def forms(self, path: str) -> list[dict]:
        return [form for _, p, _, form in self.received if p == path]

    def paths(self) -> list[str]:
        return [p for _, p, _, _ in self.received]


def menu(action="/voice/choice", num_digits=1, **attributes) -> str:
    response = VoiceResponse()
    gather = Gather(action=action, method="POST", num_digits=num_digits, **attributes)
    gather.say("Toets 1 of 2.", language="nl-NL")
    response.append(gather)
    response.say("Geen keuze.", language="nl-NL")
    response.hangup()
    return twiml(response)


def echo_digits(req) -> str:
    return say(f"U koos {req.form.get('Digits', 'niets')}.")


# ------------------------------------------------------------------ requests


def test_incoming_request_carries_twilio_parameters_and_status_moves_to_in_progress():
    line = Line({"/voice/incoming": menu(), "/voice/choice": echo_digits})
    result = line.call("1")
    first, second = line.forms("/voice/incoming")[0], line.forms("/voice/choice")[0]
    assert SID.match(first["CallSid"])
    assert first["AccountSid"].startswith("AC") and len(first["AccountSid"]) == 34
    assert first["From"] == first["Caller"] == CALLER
    assert first["To"] == first["Called"] == OFFICE
    assert first["CallStatus"] == "ringing"
    assert first["Direction"] == "inbound"
    assert first["ApiVersion"] == "2010-04-01"
    assert second["CallStatus"] == "in-progress"
    assert second["CallSid"] == first["CallSid"] == result.sid


def test_say_is_printed_with_its_language():
    line = Line({"/voice/incoming": say("Welkom bij OTYS.")})
    line.call()
    assert "[nl-NL] Welkom bij OTYS." in line.lines


def test_end_of_the_document_ends_the_call_with_a_status_callback():
    line = Line({"/voice/incoming": say("Hallo.")})
    result = line.call()
    assert result.exit_code == 0
    assert line.paths() == ["/voice/incoming", "/voice/status"]
    final = line.forms("/voice/status")[0]
    assert final["CallStatus"] == "completed"
    assert int(final["CallDuration"]) >= 1
    assert final["SequenceNumber"] == "0"
    assert final["CallSid"] == result.sid


def test_hangup_ends_the_call_and_later_verbs_never_run():
    response = VoiceResponse()
    response.say("Tot ziens.", language="nl-NL")
    response.hangup()
    response.say("Dit hoort niemand.", language="nl-NL")
    line = Line({"/voice/incoming": twiml(response)})
    result = line.call()
    assert result.exit_code == 0
    assert "the service hung up" in line.transcript
    assert "Dit hoort niemand." not in line.transcript
    assert line.forms("/voice/status")[0]["CallStatus"] == "completed"


def test_reject_ends_the_call_as_busy_without_duration():
    response = VoiceResponse()
    response.reject()
    line = Line({"/voice/incoming": twiml(response)})
    assert line.call().exit_code == 0
    final = line.forms("/voice/status")[0]
    assert final["CallStatus"] == "busy"
    assert final["CallDuration"] == "0"


# -------------------------------------------------------------------- gather


def test_gather_posts_digits_without_the_finishing_key():
    line = Line({"/voice/incoming": menu(num_digits=None), "/voice/choice": echo_digits})
    line.call("201#")
    assert line.forms("/voice/choice")[0]["Digits"] == "201"
    assert "[nl-NL] U koos 201." in line.lines


def test_gather_takes_no_more_than_num_digits():
    line = Line({"/voice/incoming": menu(num_digits=1), "/voice/choice": echo_digits})
    line.call("12")
    assert line.forms("/voice/choice")[0]["Digits"] == "1"
    assert "not heard" in line.transcript


def test_gather_with_another_finishing_key_keeps_the_hash():
    line = Line(
        {
            "/voice/incoming": menu(num_digits=None, finish_on_key="*"),
            "/voice/choice": echo_digits,
        }
    )
    line.call("12#*9")
    assert line.forms("/voice/choice")[0]["Digits"] == "12#"


def test_lone_finishing_key_is_reported_as_the_input():
    line = Line({"/voice/incoming": menu(num_digits=None), "/voice/choice": echo_digits})
    line.call("#")
    assert line.forms("/voice/choice")[0]["Digits"] == "#"


def test_nested_prompts_are_heard_before_the_question():
    line = Line({"/voice/incoming": menu(), "/voice/choice": echo_digits})
    line.call("2")
    prompt = line.lines.index("[nl-NL] Toets 1 of 2.")
    question = next(i for i, text in enumerate(line.lines) if " ? 1 key" in text)
    assert prompt < question
    assert line.lines[question].endswith("> 2")


def test_silence_runs_the_next_verb_without_a_request():
    line = Line({"/voice/incoming": menu(), "/voice/choice": echo_digits})
    line.call("-")
    assert line.forms("/voice/choice") == []
    assert "[nl-NL] Geen keuze." in line.lines


def test_action_on_empty_result_posts_the_action_without_digits():
    line = Line(
        {
            "/voice/incoming": menu(action_on_empty_result=True),
            "/voice/choice": echo_digits,
        }
    )
    line.call("-")
    form = line.forms("/voice/choice")[0]
    assert "Digits" not in form
    assert "[nl-NL] U koos niets." in line.lines


def test_gather_without_action_posts_to_the_current_url():
    response = VoiceResponse()
    response.gather(num_digits=1)

    def start(req):
        if req.form.get("Digits"):
            return say("Gekozen.")
        return twiml(response)

    line = Line({"/voice/incoming": start})
    line.call("5")
    assert line.forms("/voice/incoming")[1]["Digits"] == "5"


def test_speech_is_sent_as_speech_result_with_confidence():
    response = VoiceResponse()
    response.gather(input="dtmf speech", action="/voice/said", language="nl-NL")
    line = Line({"/voice/incoming": twiml(response), "/voice/said": say("Dank u.")})
    line.call("say:de omgeving is onbereikbaar")
    form = line.forms("/voice/said")[0]
    assert form["SpeechResult"] == "de omgeving is onbereikbaar"
    assert 0 < float(form["Confidence"]) <= 1
    assert "Digits" not in form


def test_speech_to_a_keys_only_gather_counts_as_silence():
    line = Line({"/voice/incoming": menu(), "/voice/choice": echo_digits})
    line.call("say:twee")
    assert line.forms("/voice/choice") == []
    assert "does not listen to speech" in line.transcript


def test_words_where_keys_are_expected_count_as_silence():
    line = Line({"/voice/incoming": menu(), "/voice/choice": echo_digits})
    line.call("y")
    assert line.forms("/voice/choice") == []
    assert "not key presses" in line.transcript


# ------------------------------------------------------------------ redirect


def test_redirect_resolves_a_relative_url_against_the_current_request():
    first = VoiceResponse()
    first.redirect("/voice/flow/start?step=1")
    second = VoiceResponse()
    second.redirect("next?step=2")
    line = Line(
        {
            "/voice/incoming": twiml(first),
            "/voice/flow/start": twiml(second),
            "/voice/flow/next": say("Einde."),
        }
    )
    line.call()
    assert line.paths() == [
        "/voice/incoming",
        "/voice/flow/start",
        "/voice/flow/next",
        "/voice/status",
    ]
    assert line.received[2][2] == {"step": "2"}


def test_redirect_with_get_sends_the_parameters_in_the_signed_query():
    response = VoiceResponse()
    response.redirect("/voice/get?x=1", method="GET")
    line = Line({"/voice/incoming": twiml(response), "/voice/get": say("Via GET.")})
    result = line.call()
    method, path, args, form = line.received[1]
    assert (method, path) == ("GET", "/voice/get")
    assert args["x"] == "1" and args["CallSid"] == result.sid
    assert form == {}


def test_a_looping_flow_is_stopped_with_exit_code_1():
    response = VoiceResponse()
    response.say("Nog een keer.", language="nl-NL")
    response.redirect("/voice/incoming")
    line = Line({"/voice/incoming": twiml(response)})
    result = line.call(max_requests=20)
    assert result.exit_code == 1
    assert "stopped after 20 webhook requests" in line.transcript
    assert len(line.received) == 20


# ---------------------------------------------------------------------- dial


def screened_dial(*numbers, action="/voice/dialled", **attributes) -> str:
    response = VoiceResponse()
    dial = Dial(action=action, timeout=20, **attributes)
    for number in numbers:
        dial.number(number, url="/voice/screen", method="POST")
    response.append(dial)
    response.say("Na de dial.", language="nl-NL")
    return twiml(response)


def screen(req) -> str:
    response = VoiceResponse()
    gather = response.gather(num_digits=1, action="/voice/screen/accept", timeout=8)
    gather.say("Urgente oproep. Toets 1.", language="nl-NL")
    response.hangup()
    return twiml(response)


def accept(req) -> str:
    response = VoiceResponse()
    if req.form.get("Digits") != "1":
        response.hangup()
    return twiml(response)


def dial_line(document: str) -> Line:
    return Line(
        {
            "/voice/incoming": document,
            "/voice/screen": screen,
            "/voice/screen/accept": accept,
            "/voice/dialled": lambda req: say(f"Uitkomst {req.form['DialCallStatus']}."),
            "/voice/recording": None,
        }
    )


def test_screened_callee_leg_is_its_own_outbound_call_and_accepting_bridges():
    line = dial_line(screened_dial(ENGINEER_1))
    result = line.call("1")
    leg = line.forms("/voice/screen")[0]
    assert leg["Direction"] == "outbound-dial"
    assert leg["ParentCallSid"] == result.sid
    assert SID.match(leg["CallSid"]) and leg["CallSid"] != result.sid
    assert leg["To"] == ENGINEER_1
    assert line.forms("/voice/screen/accept")[0]["CallSid"] == leg["CallSid"]
    dialled = line.forms("/voice/dialled")[0]
    assert dialled["DialCallStatus"] == "completed"
    assert dialled["DialBridged"] == "true"
    assert dialled["DialCallSid"] == leg["CallSid"]
    assert int(dialled["DialCallDuration"]) > 0
    assert dialled["CallSid"] == result.sid
    assert f"  (callee {ENGINEER_1} hears) [nl-NL] Urgente oproep. Toets 1." in line.lines
    assert "Na de dial." not in line.transcript


def test_first_callee_declining_leaves_the_next_one_ringing():
    line = dial_line(screened_dial(ENGINEER_1, ENGINEER_2))
    line.call("2,1")
    legs = line.forms("/voice/screen")
    assert [leg["To"] for leg in legs] == [ENGINEER_1, ENGINEER_2]
    dialled = line.forms("/voice/dialled")[0]
    assert dialled["DialCallStatus"] == "completed"
    assert dialled["DialCallSid"] == legs[1]["CallSid"]


def test_first_callee_accepting_wins_and_the_others_are_not_screened():
    line = dial_line(screened_dial(ENGINEER_1, ENGINEER_2))
    line.call("1")
    assert [leg["To"] for leg in line.forms("/voice/screen")] == [ENGINEER_1]


def test_nobody_accepting_reports_no_answer_and_no_bridge():
    line = dial_line(screened_dial(ENGINEER_1, ENGINEER_2))
    line.call("-,9")
    dialled = line.forms("/voice/dialled")[0]
    assert dialled["DialCallStatus"] == "no-answer"
    assert dialled["DialBridged"] == "false"
    assert "DialCallDuration" not in dialled
    assert "[nl-NL] Uitkomst no-answer." in line.lines


def test_unscreened_numbers_are_asked_whether_they_answer():
    response = VoiceResponse()
    dial = response.dial(action="/voice/dialled")
    dial.number(ENGINEER_1)
    dial.number(ENGINEER_2)
    line = dial_line(twiml(response))
    line.call("n,y")
    dialled = line.forms("/voice/dialled")[0]
    assert dialled["DialCallStatus"] == "completed"
    assert f"does {ENGINEER_1} answer?" in line.transcript
    assert f"connected to {ENGINEER_2}" in line.transcript


def test_a_busy_number_reports_busy():
    response = VoiceResponse()
    response.dial(ENGINEER_1, action="/voice/dialled")
    line = dial_line(twiml(response))
    line.call("b")
    assert line.forms("/voice/dialled")[0]["DialCallStatus"] == "busy"


def test_dial_without_action_goes_on_with_the_next_verb():
    line = dial_line(screened_dial(ENGINEER_1, action=None))
    line.call("-")
    assert line.forms("/voice/dialled") == []
    assert "[nl-NL] Na de dial." in line.lines


def test_recording_status_callback_of_an_answered_dial_is_posted():
    document = screened_dial(
        ENGINEER_1,
        record="record-from-answer",
        recording_status_callback="/voice/recording",
    )
    line = dial_line(document)
    result = line.call("1")
    dialled = line.forms("/voice/dialled")[0]
    assert RECORDING_URL.match(dialled["RecordingUrl"])
    callback = line.forms("/voice/recording")[0]
    assert callback["CallSid"] == result.sid
    assert callback["RecordingUrl"] == dialled["RecordingUrl"]
    assert callback["RecordingSid"].startswith("RE")
    assert callback["RecordingStatus"] == "completed"
    assert int(callback["RecordingDuration"]) > 0


def test_no_recording_callback_when_nobody_answered():
    document = screened_dial(ENGINEER_1, recording_status_callback="/voice/recording")
    line = dial_line(document)
    line.call("-")
    assert line.forms("/voice/recording") == []


def test_caller_hanging_up_while_it_rings_still_gets_the_dial_action_posted():
    response = VoiceResponse()
    response.dial(ENGINEER_1, action="/voice/dialled")
    line = dial_line(twiml(response))
    result = line.call("hangup")
    dialled = line.forms("/voice/dialled")[0]
    assert dialled["CallStatus"] == "completed"
    assert dialled["DialCallStatus"] == "canceled"
    assert result.ended == "caller hung up"
    assert "Uitkomst" not in line.transcript
    assert line.forms("/voice/status")


def test_a_screening_document_may_not_dial_on():
    def bad_screen(req):
        response = VoiceResponse()
        response.dial("+31201234567")
        return twiml(response)

    line = dial_line(screened_dial(ENGINEER_1))
    line.documents["/voice/screen"] = bad_screen
    result = line.call()
    assert result.exit_code == 1
    assert line.forms("/voice/dialled")[0]["DialCallStatus"] == "no-answer"


# -------------------------------------------------------------------- record


def voicemail(**attributes) -> str:
    response = VoiceResponse()
    response.say("Spreek na de toon.", language="nl-NL")
    response.record(action="/voice/voicemail", max_length=120, **attributes)
    response.say("Geen bericht ontvangen.", language="nl-NL")
    return twiml(response)


def test_record_posts_a_fake_recording_to_the_action():
    line = Line(
        {
            "/voice/incoming": voicemail(
                recording_status_callback="/voice/recording",
                transcribe_callback="/voice/transcription",
            ),
            "/voice/voicemail": say("Dank u."),
            "/voice/recording": None,
            "/voice/transcription": None,
        }
    )
    result = line.call("rec:bel mij terug over de factuur")
    form = line.forms("/voice/voicemail")[0]
    assert RECORDING_URL.match(form["RecordingUrl"])
    assert form["RecordingSid"] == form["RecordingUrl"].rsplit("/", 1)[1]
    assert 0 < int(form["RecordingDuration"]) <= 120
    assert form["Digits"] == "#"
    status = line.forms("/voice/recording")[0]
    assert status["RecordingSid"] == form["RecordingSid"]
    assert status["CallSid"] == result.sid
    transcription = line.forms("/voice/transcription")[0]
    assert transcription["TranscriptionText"] == "bel mij terug over de factuur"
    assert "Geen bericht ontvangen." not in line.transcript


def test_an_empty_recording_skips_the_action_like_twilio():
    line = Line({"/voice/incoming": voicemail(), "/voice/voicemail": say("Dank u.")})
    line.call("-")
    assert line.forms("/voice/voicemail") == []
    assert "[nl-NL] Geen bericht ontvangen." in line.lines


# ---------------------------------------------------------- answers and input


def test_parse_script_splits_on_commas():
    assert parse_script(" 9, 1 ,,say:hallo daar, rec:tekst ") == [
        "9",
        "1",
        "",
        "say:hallo daar",
        "rec:tekst",
    ]
    assert parse_script("") == []
    assert parse_script(None) == []


def test_a_finished_script_means_silence_when_nobody_is_at_the_terminal():
    line = Line({"/voice/incoming": menu(), "/voice/choice": echo_digits})
    line.call("")
    assert line.forms("/voice/choice") == []


def test_an_interactive_session_asks_the_terminal_after_the_script():
    questions = []

    def read(question):
        questions.append(question)
        return "2"

    line = Line(
        {"/voice/incoming": menu(action="/voice/again"), "/voice/again": menu()}
        | {"/voice/choice": echo_digits}
    )
    line.call("1", interactive=True, read=read)
    assert line.forms("/voice/again")[0]["Digits"] == "1"
    assert line.forms("/voice/choice")[0]["Digits"] == "2"
    assert len(questions) == 1 and "1 key" in questions[0]
    assert "Enter for silence" in line.transcript


def test_end_of_input_at_the_terminal_is_silence():
    def read(question):
        raise EOFError

    line = Line({"/voice/incoming": menu(), "/voice/choice": echo_digits})
    result = line.call(interactive=True, read=read)
    assert result.exit_code == 0
    assert line.forms("/voice/choice") == []


def test_caller_can_hang_up_at_a_question():
    line = Line({"/voice/incoming": menu(), "/voice/choice": echo_digits})
    result = line.call("hangup")
    assert result.ended == "caller hung up"
    assert "Geen keuze." not in line.transcript
    assert line.forms("/voice/status")[0]["CallStatus"] == "completed"


# ------------------------------------------------------- signing and failures


class RecordingTransport:
    def __init__(self, documents):
        self.documents = documents
        self.requests = []

    def send(self, method, url, params, signature):
        self.requests.append((method, url, dict(params), signature))
        path = url.split("://", 1)[1].split("/", 1)[1]
        body = self.documents.get("/" + path.split("?")[0], "")
        return Reply(200 if body else 204, body, "text/xml")


def test_requests_go_to_the_base_url_but_are_signed_for_the_public_url():
    response = VoiceResponse()
    response.redirect(PUBLIC + "/voice/absolute")
    transport = RecordingTransport(
        {"/voice/incoming": twiml(response), "/voice/absolute": say("Klaar.")}
    )
    telephone = Telephone(
        transport=transport, auth_token=TOKEN, base_url=BASE, public_url=PUBLIC, echo=print
    )
    telephone.call(to=OFFICE, from_=CALLER)
    validator = RequestValidator(TOKEN)
    urls = [url for _, url, _, _ in transport.requests]
    assert urls == [BASE + "/voice/incoming", BASE + "/voice/absolute", BASE + "/voice/status"]
    for _, url, params, signature in transport.requests:
        assert validator.validate(PUBLIC + url[len(BASE) :], params, signature)


def test_without_a_public_url_the_base_url_is_signed():
    transport = RecordingTransport({"/voice/incoming": say("Hallo.")})
    telephone = Telephone(transport=transport, auth_token=TOKEN, base_url=BASE, echo=print)
    telephone.call(to=OFFICE, from_=CALLER)
    _, url, params, signature = transport.requests[0]
    assert RequestValidator(TOKEN).validate(BASE + "/voice/incoming", params, signature)


def test_a_wrong_token_is_refused_with_403_and_exit_code_1():
    line = Line({"/voice/incoming": say("Welkom.")})
    result = line.call(token="not-the-service-token-000")
    assert result.exit_code == 1
    assert "HTTP 403" in line.transcript
    assert line.received == []


@pytest.mark.parametrize(
    "reply, complaint",
    [
        (Response("boom", status=500), "HTTP 500"),
        (Response("<html>oops</html>", mimetype="text/html"), "not TwiML"),
        (Response("<Response><Say>", mimetype="text/xml"), "unparseable TwiML"),
        (Response("\n<?xml version='1.0'?><Response/>", mimetype="text/xml"), "whitespace"),
        (Response("<Reply/>", mimetype="text/xml"), "not <Response>"),
    ],
)
def test_a_broken_answer_aborts_the_call_with_exit_code_1(reply, complaint):
    line = Line({"/voice/incoming": reply})
    result = line.call()
    assert result.exit_code == 1
    assert complaint in line.transcript
    assert "call aborted" in line.transcript


def test_a_failing_callback_makes_the_exit_code_1():
    line = Line({"/voice/incoming": say("Hallo."), "/voice/status": Response("kapot", status=500)})
    result = line.call()
    assert result.exit_code == 1
    assert "/voice/status answered HTTP 500" in line.transcript


# --------------------------------------------------------------- command line


def test_called_and_calling_numbers(settings):
    assert called_number(settings, "office") == settings.office.numbers[0]
    assert called_number(settings, "Emergency") == settings.emergency.numbers[0]
    assert called_number(settings, "0318 584 918") == "+31318584918"
    assert calling_number("0612345678") == "+31612345678"
    assert calling_number("anonymous") == "anonymous"
    assert calling_number("client:alice") == "client:alice"
    with pytest.raises(ValueError, match="--to"):
        called_number(settings, "banana")
    with pytest.raises(ValueError, match="--from"):
        calling_number("12")


@pytest.fixture
def cli_env(database_url):
    from helpers import AUTH_TOKEN, SECRET_KEY

    return {
        "IVR_DATABASE_URL": database_url,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "IVR_SECRET_KEY": SECRET_KEY,
        "IVR_PUBLIC_URL": "",
    }


@pytest.mark.parametrize(
    "arguments",
    [
        ["--to", "nowhere"],
        ["--from", "x"],
        ["--url", "ftp://127.0.0.1"],
        ["--bogus"],
    ],
)
def test_bad_options_exit_with_2(cli_env, arguments):
    result = CliRunner().invoke(main, ["call", *arguments], env=cli_env)
    assert result.exit_code == 2, result.output


def test_an_unreachable_service_exits_with_1(cli_env):
    result = CliRunner().invoke(
        main, ["call", "--url", "http://127.0.0.1:9", "--keys", "1"], env=cli_env
    )
    assert result.exit_code == 1
    assert "cannot reach http://127.0.0.1:9/voice/incoming" in result.output


# ------------------------------------------------------------- the real app


def test_walks_the_real_app_through_the_flask_test_client(clock, client, settings):
    from helpers import AUTH_TOKEN, OFFICE_NUMBER, PUBLIC_URL

    lines = []
    telephone = Telephone(
        transport=ClientTransport(client),
        auth_token=AUTH_TOKEN,
        base_url="http://localhost",
        public_url=PUBLIC_URL,
        answers=Answers(["hangup"]),
        echo=lines.append,
    )
    result = telephone.call(to=OFFICE_NUMBER, from_=CALLER)
    assert result.exit_code == 0, "\n".join(lines)
    assert "[nl-NL] Welkom bij OTYS." in lines


# ------------------------------------------------------------ the rough edges


def test_a_message_with_commas_stays_whole_and_the_telephone_says_so():
    notes = []
    script = parse_script("9,1,n,rec:bel mij terug, over de factuur van maart,1", warn=notes.append)
    assert script == ["9", "1", "n", "rec:bel mij terug, over de factuur van maart", "1"]
    assert notes == [
        "(the commas in 'rec:bel mij terug, over de factuur van maart' are taken as part of the "
        "message)"
    ]
    assert parse_script(r"say:ja\, graag,2") == ["say:ja, graag", "2"]


def test_a_scripted_odd_answer_to_a_ringing_number_is_said_to_be_no():
    response = VoiceResponse()
    response.dial(ENGINEER_1, action="/voice/dialled")
    line = dial_line(twiml(response))
    line.call("maybe")
    assert line.forms("/voice/dialled")[0]["DialCallStatus"] == "no-answer"
    assert "  ('maybe' is not y, n, b or hangup: taken as no answer)" in line.lines


def test_an_odd_answer_at_the_terminal_is_asked_again():
    response = VoiceResponse()
    response.dial(ENGINEER_1, action="/voice/dialled")
    line = dial_line(twiml(response))
    typed = iter(["ok", "y"])
    line.call("", interactive=True, read=lambda prompt: next(typed))
    assert "  (answer y, n, b or hangup)" in line.lines
    assert line.forms("/voice/dialled")[0]["DialCallStatus"] == "completed"


def test_a_real_time_transcription_posts_what_the_caller_says():
    response = VoiceResponse()
    response.start().transcription(
        name="voicemail",
        status_callback_url="/voice/transcript",
        language_code="nl-NL",
        track="inbound_track",
    )
    response.record(action="/voice/voicemail", max_length=120)
    stop = VoiceResponse()
    stop.stop().transcription(name="voicemail")
    stop.say("Dank u.", language="nl-NL")
    line = Line(
        {
            "/voice/incoming": twiml(response),
            "/voice/voicemail": twiml(stop),
            "/voice/transcript": None,
        }
    )
    result = line.call("rec:de omgeving ligt eruit, help")
    events = line.forms("/voice/transcript")
    assert [form["TranscriptionEvent"] for form in events] == [
        "transcription-started",
        "transcription-content",
        "transcription-stopped",
    ]
    content = events[1]
    assert content["CallSid"] == result.sid
    assert content["Final"] == "true" and content["Track"] == "inbound_track"
    assert content["LanguageCode"] == "nl-NL"
    assert json.loads(content["TranscriptionData"]) == {
        "transcript": "de omgeving ligt eruit, help",
        "confidence": 0.91,
    }
    assert [form["SequenceId"] for form in events] == ["1", "2", "3"]
    # The transcription stopped before the recording's action answered, not again at the end.
    assert line.paths().index("/voice/transcript", 2) < line.paths().index("/voice/status")


def test_without_the_server_s_secrets_the_command_names_the_file(database_url):
    env = {"IVR_DATABASE_URL": database_url, "IVR_SECRET_KEY": "", "TWILIO_AUTH_TOKEN": ""}
    result = CliRunner().invoke(main, ["call", "--keys", "1"], env=env)
    assert result.exit_code == 2
    assert "secret_key: is missing" in result.output
    assert "set -a; . ./var/dev.env; set +a" in result.output


def test_an_invalid_caller_number_is_warned_about(cli_env):
    result = CliRunner().invoke(
        main,
        ["call", "--url", "http://127.0.0.1:9", "--from", "+3161234567", "--keys", "1"],
        env=cli_env,
    )
    assert "note: --from +3161234567 is not a valid phone number" in result.output
    assert "treat the caller as withheld" in result.output
