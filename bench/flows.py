"""Simulated calls: follow the TwiML the service answers, signed like Twilio, timing webhooks."""

from __future__ import annotations

import http.client
import json
import random
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urlencode, urljoin, urlsplit

from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0" * 32
# A call that needs more webhooks than this is looping; Twilio callers would hang up too.
MAX_WEBHOOKS = 40
SPEECH = "speech:"
SILENCE = "-"
DIAL_ANSWERED = "answer"
DIAL_UNANSWERED = "no-answer"
# How sure the recogniser is of what the bench says at a speech <Gather>.
SPEECH_CONFIDENCE = "0.87"
# What a caller does once the plan has said all it says: told the outage is known, they still
# ask for an engineer (1); told every engineer is on a call, they ask to be called back (2).
CALL_BACK_KEY = "2"
BUSY_PATH = "/voice/emergency/busy"
INSISTS = {"/voice/emergency/known": "1", BUSY_PATH: CALL_BACK_KEY}


class FlowError(Exception):
    """A call did not go the way its plan says, or the service answered badly."""


def new_sid(prefix: str = "CA") -> str:
    """Return a fresh Twilio-shaped SID."""
    return prefix + uuid.uuid4().hex


class HttpTransport:
    """One keep-alive HTTP connection to a server on the loopback interface."""

    def __init__(self, host: str, port: int, *, timeout: float = 15.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        self._connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._connection

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict
    ) -> tuple[int, bytes]:
        """Send one request and return its status and body, reconnecting a stale connection once."""
        reused = self._connection is not None
        connection = self._connection or self._connect()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.close()
            if not reused:
                raise
        # The server closed an idle keep-alive connection: what Twilio would do is connect again.
        connection = self._connect()
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        """Close the connection."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class FlaskTransport:
    """Send the same requests through a Flask test client (for the bench's own tests)."""

    def __init__(self, client) -> None:
        self.client = client

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict
    ) -> tuple[int, bytes]:
        """Send one request through the test client."""
        response = self.client.open(path, method=method, data=body, headers=headers)
        return response.status_code, response.get_data()

    def close(self) -> None:
        """Nothing to close."""


class Twilio:
    """Post webhooks the way Twilio does: signed over the public URL, form-encoded."""

    def __init__(self, transport, *, public_url: str, auth_token: str) -> None:
        self.transport = transport
        self.public_url = public_url.rstrip("/")
        self.validator = RequestValidator(auth_token)

    def send(
        self, path: str, params: dict, samples: list, *, method: str = "POST"
    ) -> tuple[int, bytes]:
        """Send one signed webhook, append (endpoint, seconds) to `samples`, return the answer."""
        headers = {"User-Agent": "TwilioProxy/1.1", "Connection": "keep-alive"}
        if method == "GET":
            path = path + ("&" if "?" in path else "?") + urlencode(params)
            body = None
            signed = {}
        else:
            body = urlencode(params).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            signed = params
        url = self.public_url + path
        headers["X-Twilio-Signature"] = self.validator.compute_signature(url, signed)
        started = time.perf_counter()
        status, data = self.transport.request(method, path, body, headers)
        samples.append((urlsplit(path).path, time.perf_counter() - started))
        return status, data

    def resolve(self, current_path: str, target: str) -> str:
        """Resolve a TwiML URL against the current request, as Twilio does; stay on the service."""
        url = urljoin(self.public_url + current_path, target.strip())
        if not url.startswith(self.public_url + "/"):
            raise FlowError(f"TwiML points outside the service: {target!r}")
        return url[len(self.public_url) :]


@dataclass(frozen=True)
class Plan:
    """What a caller and the engineers do on one simulated call."""

    name: str
    to: str
    # Answers to the caller's <Gather>s in order: digits, "speech:text", or "-" for silence.
    answers: tuple[str, ...] = ()
    # What happens to each <Dial>, in order (the last one repeats): "answer" or "no-answer".
    # On a screened <Number url>, "answer" means the first engineer presses 1.
    dials: tuple[str, ...] = (DIAL_ANSWERED,)
    # How the call must end: "bridged" to a person, "voicemail" recorded, or just "ended".
    expect: str = "bridged"
    # Whose phone calls: "entitled" (a key/super user in the directory) or "anyone".
    caller_kind: str = "anyone"
    # Told every engineer is on a call: ask for a call-back (2), or stay on the line (SILENCE)
    # for the voicemail.
    when_all_busy: str = CALL_BACK_KEY


@dataclass
class CallResult:
    """What happened on one simulated call."""

    plan: str
    sid: str
    samples: list[tuple[str, float]] = field(default_factory=list)
    bridged: bool = False
    recorded: bool = False
    # Every engineer was on a call, and the caller asked to be called back.
    called_back: bool = False
    # Every engineer rung refused at once, being on another call (the bench's engineers end
    # their calls at once, so by the dial's end one may be free and the escalation over: the
    # caller leaves a voicemail; with calls of minutes they would be offered a call-back).
    refused_busy: bool = False
    error: str | None = None
    started: float = 0.0
    ended: float = 0.0


class _Call:
    """One call in progress: the caller's form and what is left of the plan."""

    def __init__(self, twilio: Twilio, plan: Plan, result: CallResult, caller: str | None,
                 think: float, alarms: tuple[str, ...]) -> None:  # fmt: skip
        self.twilio = twilio
        self.plan = plan
        self.result = result
        self.think = think
        self.alarms = alarms
        self.answers = list(plan.answers)
        self.dials = list(plan.dials)
        self.form = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": result.sid,
            "CallStatus": "ringing",
            "Called": plan.to,
            "Direction": "inbound",
            "To": plan.to,
            "ToCountry": "NL",
        }
        if caller is not None:
            self.form.update({"From": caller, "Caller": caller, "FromCountry": "NL"})
        self.sequence = 0
        # A real-time transcription the service started (<Start><Transcription>): its
        # callback path and how many events it was sent.
        self.transcription: list | None = None
        self.leg_refused_at_once = False

    # -- requests ---------------------------------------------------------------------------

    def twiml(self, path: str, params: dict, *, method: str = "POST", form=None) -> ET.Element:
        """Post a webhook that must answer TwiML, and parse it."""
        if len(self.result.samples) >= MAX_WEBHOOKS:
            raise FlowError(f"more than {MAX_WEBHOOKS} webhooks: the call loops")
        if self.think and self.result.samples:
            # People take different times to listen and answer; equal pauses would make
            # every simulated caller send its webhooks in the same instant.
            time.sleep(self.think * random.uniform(0.5, 1.5))
        data = {**(form or self.form), **params}
        status, body = self.twilio.send(path, data, self.result.samples, method=method)
        if status != 200:
            raise FlowError(f"{path} answered HTTP {status}")
        if not body.startswith(b"<?xml"):
            raise FlowError(f"{path} answered something that is not TwiML: {body[:60]!r}")
        try:
            root = ET.fromstring(body)  # noqa: S314 - our own server on 127.0.0.1
        except ET.ParseError as exc:
            raise FlowError(f"{path} answered unparsable TwiML ({exc})") from None
        if root.tag != "Response":
            raise FlowError(f"{path} answered <{root.tag}> instead of <Response>")
        spoken = " ".join(say.text or "" for say in root.iter("Say"))
        for alarm in self.alarms:
            if alarm and alarm in spoken:
                raise FlowError(f"{path} answered with the service's fallback ({alarm!r})")
        return root

    def callback(self, path: str, params: dict, *, method: str = "POST", form=None) -> None:
        """Post a callback whose answer Twilio ignores; it must still succeed."""
        data = {**(form or self.form), **params}
        status, _body = self.twilio.send(path, data, self.result.samples, method=method)
        if status >= 300:
            raise FlowError(f"callback {path} answered HTTP {status}")

    # -- the call ---------------------------------------------------------------------------

    def run(self) -> None:
        path = "/voice/incoming"
        root = self.twiml(path, {})
        self.form["CallStatus"] = "in-progress"
        while root is not None:
            root, path = self.perform(root, path)
        if self.transcription is not None:  # the call's end stops what transcribes it
            self.transcription_event("transcription-stopped", {})
        self.sequence += 1
        self.callback(
            "/voice/status",
            {"CallStatus": "completed", "CallDuration": "95", "SequenceNumber": str(self.sequence)},
        )
        self.check_outcome()

    def check_outcome(self) -> None:
        if self.answers:
            # The service asked fewer questions than the plan answers: the flow has changed.
            raise FlowError(f"the call ended before the plan's answers {self.answers} were asked")
        expect = self.plan.expect
        result = self.result
        served = result.bridged or result.called_back or (result.refused_busy and result.recorded)
        if expect == "bridged" and not served:
            raise FlowError("the caller was never bridged to a person nor called back")
        if expect == "voicemail" and not (self.result.recorded and not self.result.bridged):
            raise FlowError("the caller did not end in a voicemail")

    def perform(self, root: ET.Element, path: str) -> tuple[ET.Element | None, str]:
        """Run the verbs of one document; return the next document, or None when the call ends."""
        for verb in root:
            tag = verb.tag
            if tag in ("Say", "Play", "Pause"):
                continue
            if tag == "Gather":
                answer = self.answers.pop(0) if self.answers else self.insist(verb, path)
                if answer == SILENCE:
                    if verb.get("actionOnEmptyResult") == "true":
                        return self.follow(verb, path, {})
                    continue
                return self.follow(verb, path, self.gather_params(verb, path, answer))
            if tag == "Redirect":
                target = self.twilio.resolve(path, verb.text or "")
                return self.twiml(target, {}, method=verb.get("method", "POST")), target
            if tag == "Dial":
                outcome = self.dial(verb)
                if verb.get("action"):
                    if outcome["DialCallStatus"] == "completed":
                        # The caller hangs up after the conversation: Twilio ignores this answer.
                        target = self.twilio.resolve(path, verb.get("action"))
                        self.twiml(target, {**outcome, "CallStatus": "completed"})
                        return None, path
                    return self.follow(verb, path, outcome)
                if self.result.bridged:
                    return None, path
                continue
            if tag == "Record":
                return self.record(verb, path)
            if tag == "Start":
                self.start_transcription(verb, path)
                continue
            if tag == "Stop":
                self.transcription_event("transcription-stopped", {})
                self.transcription = None
                continue
            if tag in ("Hangup", "Reject"):
                return None, path
            raise FlowError(f"{path} answered a verb the bench does not know: <{tag}>")
        return None, path

    def insist(self, verb: ET.Element, path: str) -> str:
        """Answer a choice the plan does not know of: an engineer after all, or a call-back."""
        action = urlsplit(self.twilio.resolve(path, verb.get("action") or path)).path
        answer = self.plan.when_all_busy if action == BUSY_PATH else INSISTS.get(action, SILENCE)
        if answer == CALL_BACK_KEY:
            self.result.called_back = True
        return answer

    def follow(self, verb: ET.Element, path: str, params: dict) -> tuple[ET.Element, str]:
        """Request a verb's action (default: the current URL) with `params`."""
        target = self.twilio.resolve(path, verb.get("action") or path)
        return self.twiml(target, params, method=verb.get("method", "POST")), target

    def gather_params(self, verb: ET.Element, path: str, answer: str) -> dict:
        inputs = (verb.get("input") or "dtmf").split()
        if answer.startswith(SPEECH):
            if "speech" not in inputs:
                raise FlowError(f"{path}: expected a speech <Gather>, got input={inputs}")
            return {"SpeechResult": answer[len(SPEECH) :], "Confidence": SPEECH_CONFIDENCE}
        if "dtmf" not in inputs:
            raise FlowError(f"{path}: expected a keypad <Gather>, got input={inputs}")
        return {"Digits": answer}

    def start_transcription(self, verb: ET.Element, path: str) -> None:
        """Begin Twilio's real-time transcription of the call, as <Start><Transcription> asks."""
        for child in verb:
            if child.tag != "Transcription" or not child.get("statusCallbackUrl"):
                raise FlowError(f"{path}: <Start><{child.tag}> is not known to the bench")
            self.transcription = [self.twilio.resolve(path, child.get("statusCallbackUrl")), 0]
            self.transcription_event("transcription-started", {})

    def transcription_event(self, event: str, params: dict) -> None:
        """Post one real-time transcription callback, numbered like Twilio's."""
        if self.transcription is None:
            return
        self.transcription[1] += 1
        form = {"AccountSid": ACCOUNT_SID, "CallSid": self.result.sid}
        self.callback(
            self.transcription[0],
            {
                "TranscriptionSid": "GT" + self.result.sid[2:],
                "TranscriptionEvent": event,
                "SequenceId": str(self.transcription[1]),
                **params,
            },
            form=form,
        )

    def record(self, verb: ET.Element, path: str) -> tuple[ET.Element, str]:
        """Leave a voicemail: the caller speaks and ends it with the hash key."""
        self.result.recorded = True
        said = {"transcript": "De omgeving ligt eruit sinds vanochtend.", "confidence": 0.9}
        self.transcription_event(
            "transcription-content",
            {"TranscriptionData": json.dumps(said), "Final": "true", "Track": "inbound_track"},
        )
        recording_sid = new_sid("RE")
        recording_url = (
            f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}"
        )
        params = {
            "RecordingUrl": recording_url,
            "RecordingSid": recording_sid,
            "RecordingDuration": "14",
            "Digits": "#",
        }
        root, target = self.follow(verb, path, params)
        self.recording_callbacks(verb, path, recording_sid, recording_url)
        return root, target

    def recording_callbacks(self, verb: ET.Element, path: str, sid: str, url: str) -> None:
        status_url = verb.get("recordingStatusCallback")
        if status_url:
            self.callback(
                self.twilio.resolve(path, status_url),
                {
                    "RecordingSid": sid,
                    "RecordingUrl": url,
                    "RecordingStatus": "completed",
                    "RecordingDuration": "14",
                    "RecordingChannels": "1",
                    "RecordingSource": "RecordVerb" if verb.tag == "Record" else "DialVerb",
                },
                method=verb.get("recordingStatusCallbackMethod", "POST"),
            )
        transcribe_url = verb.get("transcribeCallback")
        if transcribe_url:
            self.callback(
                self.twilio.resolve(path, transcribe_url),
                {
                    "RecordingSid": sid,
                    "RecordingUrl": url,
                    "TranscriptionSid": new_sid("TR"),
                    "TranscriptionStatus": "completed",
                    "TranscriptionText": "The environment is down since this morning.",
                },
            )

    # -- the engineers' legs ----------------------------------------------------------------

    def dial(self, verb: ET.Element) -> dict:
        """Ring what a <Dial> rings; return the parameters of its action request."""
        outcome = self.dials.pop(0) if len(self.dials) > 1 else self.dials[0]
        screened = [number for number in verb.findall("Number") if number.get("url")]
        leg_sid = new_sid()
        if screened:
            if outcome == DIAL_ANSWERED:
                # The first who picks up and presses 1; an engineer who took another call
                # meanwhile is refused at the screening, and the next phone is answered.
                bridged, refused = False, 0
                for number in screened:
                    bridged = self.screen(number, leg_sid, accept=True)
                    if bridged:
                        break
                    refused += self.leg_refused_at_once
                    leg_sid = new_sid()
                self.result.refused_busy = refused == len(screened)
            else:
                for number in screened:
                    self.screen(number, new_sid(), accept=False)
                bridged = False
        else:
            bridged = outcome == DIAL_ANSWERED
        if not bridged:
            return {"DialCallStatus": "no-answer", "DialCallSid": leg_sid}
        self.result.bridged = True
        if verb.get("recordingStatusCallback"):
            self.recording_callbacks(
                verb, "/voice/incoming", new_sid("RE"), "https://api.twilio.com/r"
            )
        return {
            "DialCallStatus": "completed",
            "DialCallSid": leg_sid,
            "DialCallDuration": "84",
            "DialBridged": "true",
        }

    def screen(self, number: ET.Element, leg_sid: str, *, accept: bool) -> bool:
        """Answer one engineer's phone: run the screening, press 1 or let it time out."""
        engineer = (number.text or "").strip()
        leg = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": leg_sid,
            "ParentCallSid": self.result.sid,
            "CallStatus": "in-progress",
            "Direction": "outbound-dial",
            "From": self.form.get("From", self.plan.to),
            "To": engineer,
            "Called": engineer,
        }
        events = (number.get("statusCallbackEvent") or "").split()
        status_url = number.get("statusCallback")
        current = "/voice/incoming"
        if status_url:
            status_url = self.twilio.resolve(current, status_url)
            for event, status in (("initiated", "initiated"), ("ringing", "ringing"),
                                  ("answered", "in-progress")):  # fmt: skip
                if event in events:
                    self.callback(status_url, {"CallStatus": status}, form=leg)
        path = self.twilio.resolve(current, number.get("url"))
        root = self.twiml(path, {}, method=number.get("method", "POST"), form=leg)
        # Hung up before any question: this engineer is on another of the line's calls.
        self.leg_refused_at_once = [verb.tag for verb in root] == ["Hangup"]
        bridged = self.run_screening(root, path, leg, accept=accept)
        if status_url and (not events or "completed" in events):
            self.callback(status_url, {"CallStatus": "completed", "CallDuration": "30"}, form=leg)
        if bridged and not accept:
            raise FlowError("an engineer's voicemail was bridged without anyone pressing 1")
        return bridged

    def run_screening(self, root: ET.Element, path: str, leg: dict, *, accept: bool) -> bool:
        for _step in range(5):
            for verb in root:
                if verb.tag in ("Say", "Play", "Pause"):
                    continue
                if verb.tag == "Gather":
                    if accept:
                        target = self.twilio.resolve(path, verb.get("action") or path)
                        root = self.twiml(target, {"Digits": "1"}, form=leg)
                        path = target
                        break
                    if verb.get("actionOnEmptyResult") == "true":
                        target = self.twilio.resolve(path, verb.get("action") or path)
                        root = self.twiml(target, {}, form=leg)
                        path = target
                        break
                    continue
                if verb.tag == "Redirect":
                    path = self.twilio.resolve(path, verb.text or "")
                    root = self.twiml(path, {}, form=leg)
                    break
                if verb.tag in ("Hangup", "Reject"):
                    return False
                raise FlowError(f"{path}: <{verb.tag}> is not allowed on a screened leg")
            else:
                # The screening document ran out: Twilio bridges this leg to the caller.
                return True
        raise FlowError(f"{path}: the screening loops")


def place_call(
    twilio: Twilio,
    plan: Plan,
    *,
    caller: str | None,
    sid: str | None = None,
    think: float = 0.0,
    alarms: tuple[str, ...] = (),
) -> CallResult:
    """Walk one whole call as `plan` says; errors end up in the result, never raised."""
    result = CallResult(plan=plan.name, sid=sid or new_sid())
    result.started = time.perf_counter()
    call = _Call(twilio, plan, result, caller, think, alarms)
    try:
        call.run()
    except FlowError as exc:
        result.error = str(exc)
    except (OSError, http.client.HTTPException) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    result.ended = time.perf_counter()
    return result


def standard_plans(settings, *, triage_key: str = "1") -> dict[str, Plan]:
    """Return the calls the bench places, built from the service's own configuration.

    Callers who reach an engineer press `triage_key`: 1, a major outage (from the third
    organisation on they join one incident and hear it is known), or 2, an urgent bug.
    """
    office = settings.office.numbers[0]
    emergency = settings.emergency.numbers[0]
    # The triage key is the caller's last answer: the same response rings the engineers.
    plans = [
        Plan("emergency-accept", emergency, (triage_key,), caller_kind="entitled"),
        Plan(
            "emergency-voicemail",
            emergency,
            ("2",),
            dials=(DIAL_UNANSWERED,),
            expect="voicemail",
            caller_kind="entitled",
            when_all_busy=SILENCE,
        ),
        Plan(
            "office-to-emergency",
            office,
            (settings.office.emergency_key, triage_key),
            caller_kind="entitled",
        ),
    ]
    departments = sorted(settings.office.departments.items(), key=lambda item: item[1].key)
    for name, department in departments:
        plans.append(Plan(f"office-{name}", office, (department.key,)))
    first_key = departments[0][1].key
    plans.append(Plan("office-english", office, (settings.office.english_key, first_key)))
    if settings.office.colleagues:
        extension = settings.office.colleagues[0].extension
        plans.append(Plan("office-colleague", office, (settings.office.colleague_key, extension)))
    plans.append(
        Plan("office-voicemail", office, (first_key,), dials=(DIAL_UNANSWERED,), expect="voicemail")
    )
    return {plan.name: plan for plan in plans}
