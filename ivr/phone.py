"""The terminal telephone: place a simulated, Twilio-signed call against a running service.

`Telephone` plays Twilio's part: it posts signed webhooks through an injectable transport,
reads the TwiML that comes back and follows it verb by verb, asking `Answers` whenever the
caller (or an engineer being screened) would press keys, speak or pick up.
"""

from __future__ import annotations

import math
import time
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Protocol
from urllib.parse import urlencode, urljoin, urlsplit

import phonenumbers
import requests
from twilio.request_validator import RequestValidator

from ivr.settings import Settings

DEFAULT_URL = "http://127.0.0.1:8000"
ACCOUNT_SID = "AC" + "5" * 32
API_VERSION = "2010-04-01"
MAX_REQUESTS = 60
# Simulated seconds of conversation once a <Dial> is bridged.
TALK_SECONDS = 45
SPEECH_CONFIDENCE = "0.92"
INTERACTIVE_HINT = (
    "Answer each ? with keys (1, 201#), Enter for silence, 'say: words' to speak, "
    "y/n/b when a number rings, your message at a recording, or 'hangup'."
)
# Parameters too long or random to be worth reading in the transcript.
UNSHOWN = frozenset({"RecordingUrl", "RecordingSid", "DialCallSid", "RecordingStartTime"})
DTMF_KEYS = frozenset("0123456789*#")
SILENCE = "-"
HANGUP = "hangup"
SPEECH_PREFIX = "say:"
RECORDING_PREFIX = "rec:"
YES = frozenset({"y", "yes", "j", "ja"})
BUSY = frozenset({"b", "busy"})
# Verbs Twilio allows in a <Number url> document, run on the callee's leg.
CALLEE_VERBS = frozenset({"Say", "Play", "Pause", "Gather", "Hangup", "Redirect"})

# How a TwiML document run ends.
ENDED = "ended"  # the document ran out of verbs: Twilio ends the call (or bridges a callee)
HUNG_UP = "hung up"  # <Hangup/>
REJECTED = "rejected"  # <Reject/>
CALLER_HUNG_UP = "caller hung up"


class CallFailed(Exception):
    """The service answered something Twilio would not accept; the call cannot go on."""


class Transport(Protocol):
    """Deliver one signed webhook and return the service's answer."""

    def send(self, method: str, url: str, params: dict[str, str], signature: str) -> Reply:
        """Send `params` to `url` with the X-Twilio-Signature header."""


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, body text and content type."""

    status: int
    body: str
    content_type: str = ""


class HttpTransport:
    """Send webhooks over real HTTP, waiting at most as long as Twilio does."""

    def __init__(self, timeout: float = 15.0) -> None:
        self.session = requests.Session()
        self.timeout = timeout

    def send(self, method: str, url: str, params: dict[str, str], signature: str) -> Reply:
        """Post (or get) the webhook and return the answer."""
        headers = {"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1 (ivr call)"}
        try:
            if method == "GET":
                response = self.session.get(url, headers=headers, timeout=self.timeout)
            else:
                response = self.session.post(
                    url, data=params, headers=headers, timeout=self.timeout
                )
        except requests.RequestException as exc:
            raise CallFailed(f"cannot reach {url}: {exc}") from exc
        return Reply(response.status_code, response.text, response.headers.get("Content-Type", ""))


class ClientTransport:
    """Send webhooks through a Werkzeug/Flask test client instead of the network."""

    def __init__(self, client) -> None:
        self.client = client

    def send(self, method: str, url: str, params: dict[str, str], signature: str) -> Reply:
        """Open the URL's path and query on the test client."""
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"X-Twilio-Signature": signature}
        data = None if method == "GET" else params
        response = self.client.open(target, method=method, data=data, headers=headers)
        return Reply(response.status_code, response.get_data(as_text=True), response.mimetype)


class Answers:
    """Answer the telephone's questions: the script first, then the terminal or silence."""

    def __init__(
        self,
        script: Iterable[str] = (),
        *,
        interactive: bool = False,
        read: Callable[[str], str] = input,
    ) -> None:
        self.pending = deque(script)
        self.interactive = interactive
        self.read = read

    def next(self, question: str) -> tuple[str, bool]:
        """Return the answer to `question` and whether it was typed at the terminal."""
        if self.pending:
            return self.pending.popleft(), False
        if self.interactive:
            try:
                return self.read(question + " > ").strip(), True
            except EOFError:
                self.interactive = False
        return SILENCE, False


def parse_script(text: str | None) -> list[str]:
    """Split a `--keys` script into its comma-separated answers."""
    if not text or not text.strip():
        return []
    return [part.strip() for part in text.split(",")]


def new_sid(prefix: str) -> str:
    """Return a Twilio-shaped SID: two letters and 32 hex digits."""
    return prefix + uuid.uuid4().hex


@dataclass
class Leg:
    """One call leg: the caller's inbound call, or an engineer's leg created by <Dial>."""

    params: dict[str, str]
    number: str
    callee: bool = False

    @property
    def sid(self) -> str:
        """Return this leg's CallSid."""
        return self.params["CallSid"]

    @property
    def prefix(self) -> str:
        """Return how what this leg hears is marked in the transcript."""
        return f"  (callee {self.number} hears) " if self.callee else ""

    @property
    def tag(self) -> str:
        """Return how other lines of this leg are marked in the transcript."""
        return f"  (callee {self.number})" if self.callee else " "


@dataclass(frozen=True)
class Callback:
    """A request Twilio makes on its own (recording ready, transcription done)."""

    url: str
    method: str
    params: dict[str, str]
    with_call_params: bool = True


@dataclass(frozen=True)
class Goto:
    """Twilio's next request: fetch `url` and run the TwiML it answers."""

    url: str
    method: str = "POST"
    params: dict[str, str] = field(default_factory=dict)
    # Requests Twilio makes on its own once this one is made (recording status, ...).
    callbacks: list[Callback] = field(default_factory=list)


@dataclass(frozen=True)
class Sent:
    """One webhook the telephone sent, for transcripts and tests."""

    method: str
    url: str
    params: dict[str, str]
    status: int


@dataclass
class CallResult:
    """How a simulated call went."""

    sid: str
    ended: str
    exit_code: int
    duration: int = 0
    sent: list[Sent] = field(default_factory=list)


class Telephone:
    """Place one simulated call and follow the service's TwiML as Twilio would."""

    def __init__(
        self,
        *,
        transport: Transport,
        auth_token: str,
        base_url: str = DEFAULT_URL,
        public_url: str = "",
        answers: Answers | None = None,
        echo: Callable[[str], None] = print,
        clock: Callable[[], float] = time.monotonic,
        max_requests: int = MAX_REQUESTS,
    ) -> None:
        self.transport = transport
        self.validator = RequestValidator(auth_token)
        self.base_url = base_url.rstrip("/")
        self.public_url = (public_url or base_url).rstrip("/")
        self.answers = answers or Answers()
        self.echo = echo
        self.clock = clock
        self.max_requests = max_requests
        self.sent: list[Sent] = []
        self.fetches = 0
        self.problems: list[str] = []
        self.simulated_seconds = 0

    # ------------------------------------------------------------------ the call

    def call(self, *, to: str, from_: str, sid: str | None = None) -> CallResult:
        """Ring `to` from `from_`, walk the whole call, send the final status callback."""
        leg = Leg(
            params={
                "CallSid": sid or new_sid("CA"),
                "AccountSid": ACCOUNT_SID,
                "From": from_,
                "To": to,
                "Caller": from_,
                "Called": to,
                "CallStatus": "ringing",
                "Direction": "inbound",
                "ApiVersion": API_VERSION,
            },
            number=from_,
        )
        self.echo(f"Calling {to} from {from_} via {self.base_url} (CallSid {leg.sid})")
        if self.answers.interactive:
            self.echo(INTERACTIVE_HINT)
        started = self.clock()
        try:
            ended = self.follow(leg, Goto(self.public_url + "/voice/incoming"))
        except CallFailed as exc:
            self.echo(f"!! {exc}")
            self.echo("!! call aborted")
            return CallResult(leg.sid, "failed", 1, sent=self.sent)
        duration = max(1, math.ceil(self.clock() - started) + self.simulated_seconds)
        if ended == REJECTED:
            duration = 0
        final = {
            "CallStatus": "busy" if ended == REJECTED else "completed",
            "CallDuration": str(duration),
            "SequenceNumber": "0",
            "Timestamp": formatdate(usegmt=True),
            "CallbackSource": "call-progress-events",
        }
        try:
            self.callback(leg, Callback(self.public_url + "/voice/status", "POST", final))
        except CallFailed as exc:
            self.problems.append(str(exc))
        self.echo(f"== call ended: {self.describe_end(ended)}, after {duration} s")
        for problem in self.problems:
            self.echo(f"!! {problem}")
        code = 1 if self.problems else 0
        return CallResult(leg.sid, ended, code, duration=duration, sent=self.sent)

    @staticmethod
    def describe_end(ended: str) -> str:
        """Say in words how the call ended."""
        return {
            ENDED: "the TwiML ran out of verbs, so Twilio hangs up",
            HUNG_UP: "the service hung up",
            REJECTED: "the service rejected the call",
            CALLER_HUNG_UP: "the caller hung up",
        }.get(ended, ended)

    def follow(self, leg: Leg, goto: Goto) -> str:
        """Fetch TwiML and run it, following every request it leads to, until the leg ends."""
        while True:
            document = self.fetch(leg, goto)
            for callback in goto.callbacks:
                self.callback(leg, callback)
            step = self.run(leg, document, goto.url)
            if isinstance(step, Goto):
                goto = step
                continue
            return step

    # --------------------------------------------------------------- transport

    def signed_send(self, method: str, url: str, params: dict[str, str]) -> Reply:
        """Sign like Twilio and send to where the service really listens."""
        if method == "GET":
            url = url + ("&" if urlsplit(url).query else "?") + urlencode(params)
            signature = self.validator.compute_signature(url, {})
        else:
            signature = self.validator.compute_signature(url, params)
        target = url
        if url.startswith(self.public_url + "/") or url == self.public_url:
            target = self.base_url + url[len(self.public_url) :]
        reply = self.transport.send(method, target, params, signature)
        self.sent.append(Sent(method, url, dict(params), reply.status))
        return reply

    def fetch(self, leg: Leg, goto: Goto) -> ET.Element:
        """Request TwiML for `leg` and parse it as Twilio would."""
        self.fetches += 1
        if self.fetches > self.max_requests:
            raise CallFailed(
                f"stopped after {self.max_requests} webhook requests: the call seems to loop"
            )
        params = {**leg.params, **goto.params}
        shown = "  ".join(f"{k}={v}" for k, v in goto.params.items() if k not in UNSHOWN)
        self.echo(f"{leg.tag} -> {goto.method} {self.short(goto.url)}  {shown}".rstrip())
        reply = self.signed_send(goto.method, goto.url, params)
        leg.params["CallStatus"] = "in-progress"
        return self.parse(reply, goto.url)

    def callback(self, leg: Leg, callback: Callback) -> None:
        """Send a callback whose answer Twilio ignores; a failure is still a problem."""
        if callback.with_call_params:
            params = {**leg.params, **callback.params}
        else:
            params = {"AccountSid": ACCOUNT_SID, "CallSid": leg.sid, **callback.params}
        where = self.short(callback.url)
        self.echo(f"{leg.tag} -> {callback.method} {where}  (callback)")
        reply = self.signed_send(callback.method, callback.url, params)
        if not 200 <= reply.status < 300:
            self.problems.append(f"{where} answered HTTP {reply.status}: {reply.body[:200]!r}")

    def parse(self, reply: Reply, url: str) -> ET.Element:
        """Return the <Response> element, or fail the call like Twilio's errors 11200/12100."""
        where = self.short(url)
        if not 200 <= reply.status < 300:
            raise CallFailed(f"{where} answered HTTP {reply.status}: {reply.body[:300]!r}")
        if "xml" not in reply.content_type:
            raise CallFailed(
                f"{where} answered {reply.content_type or 'no content type'}, not TwiML: "
                f"{reply.body[:300]!r}"
            )
        if reply.body[:1].isspace():
            raise CallFailed(f"{where}: whitespace before the XML declaration (Twilio 12100)")
        try:
            root = ET.fromstring(reply.body)  # noqa: S314 - TwiML of the service under test
        except ET.ParseError as exc:
            raise CallFailed(f"{where}: unparseable TwiML ({exc}): {reply.body[:300]!r}") from exc
        if root.tag != "Response":
            raise CallFailed(f"{where}: TwiML root is <{root.tag}>, not <Response>")
        return root

    def short(self, url: str) -> str:
        """Show our own URLs as paths, foreign ones in full."""
        if url.startswith(self.public_url + "/"):
            return url[len(self.public_url) :]
        return url

    # ------------------------------------------------------------------- verbs

    def run(self, leg: Leg, root: ET.Element, url: str) -> Goto | str:
        """Run one TwiML document; return the next request or how the leg ended."""
        for verb in root:
            if leg.callee and verb.tag not in CALLEE_VERBS:
                self.echo(f"{leg.tag} !! <{verb.tag}> is not allowed on a screened leg")
                self.problems.append(f"<{verb.tag}> in a <Number url> document")
                return HUNG_UP
            if verb.tag in ("Say", "Play", "Pause"):
                self.speak(leg, verb)
                continue
            if verb.tag == "Hangup":
                return HUNG_UP
            if verb.tag == "Reject":
                return REJECTED
            if verb.tag == "Redirect":
                target = (verb.text or "").strip()
                return Goto(urljoin(url, target) if target else url, self.method(verb))
            handler = {"Gather": self.gather, "Dial": self.dial, "Record": self.record}.get(
                verb.tag
            )
            if handler is None:
                self.echo(f"{leg.prefix}[<{verb.tag}> is not simulated; skipped]")
                continue
            step = handler(leg, verb, url)
            if step is not None:
                return step
        return ENDED

    @staticmethod
    def method(verb: ET.Element, attribute: str = "method") -> str:
        """Return the HTTP method a verb asks for (POST unless GET)."""
        return "GET" if (verb.get(attribute) or "").upper() == "GET" else "POST"

    def speak(self, leg: Leg, verb: ET.Element) -> None:
        """Print what a <Say>, <Play> or <Pause> makes the listener hear."""
        loop = verb.get("loop")
        times = f" (x{loop})" if loop and loop not in ("1", "0") else ""
        if verb.tag == "Say":
            text = " ".join("".join(verb.itertext()).split())
            self.echo(f"{leg.prefix}[{verb.get('language', 'en-US')}] {text}{times}")
        elif verb.tag == "Play":
            what = f"keys {verb.get('digits')}" if verb.get("digits") else (verb.text or "").strip()
            self.echo(f"{leg.prefix}[plays {what}]{times}")
        else:
            self.echo(f"{leg.prefix}[pause {verb.get('length', '1')} s]")

    def ask(self, leg: Leg, question: str) -> str:
        """Ask the caller (or callee) and show the answer in the transcript."""
        answer, typed = self.answers.next(f"{leg.tag} ? {question}")
        if not typed:
            self.echo(f"{leg.tag} ? {question} > {answer or SILENCE}")
        return answer

    def gather(self, leg: Leg, verb: ET.Element, url: str) -> Goto | str | None:
        """Play the nested prompts, take keys or speech, post them like Twilio."""
        for child in verb:
            if child.tag in ("Say", "Play", "Pause"):
                self.speak(leg, child)
        inputs = (verb.get("input") or "dtmf").split()
        finish = verb.get("finishOnKey", "#")
        num = verb.get("numDigits")
        limit = int(num) if num and num.isdigit() and int(num) > 0 else None
        parts = []
        if "dtmf" in inputs:
            if limit:
                parts.append(f"{limit} key{'s' if limit > 1 else ''}")
            else:
                parts.append("keys")
            if finish:
                parts.append(f"{finish} ends")
        if "speech" in inputs:
            parts.append("or say: words")
        parts.append(f"timeout {verb.get('timeout', '5')} s")
        answer = self.ask(leg, ", ".join(parts))
        action = urljoin(url, verb.get("action") or "") if verb.get("action") else url
        goto_method = self.method(verb)

        if answer.lower() == HANGUP:
            return CALLER_HUNG_UP if not leg.callee else HUNG_UP
        if answer.lower().startswith(SPEECH_PREFIX):
            words = answer[len(SPEECH_PREFIX) :].strip()
            if words and "speech" in inputs:
                params = {"SpeechResult": words, "Confidence": SPEECH_CONFIDENCE}
                return Goto(action, goto_method, params)
            if words:
                self.echo(f"{leg.tag} (this <Gather> does not listen to speech)")
            answer = SILENCE
        keys = answer.replace(" ", "")
        if keys and keys != SILENCE:
            if not set(keys) <= DTMF_KEYS:
                self.echo(f"{leg.tag} ({answer!r} is not key presses: treated as silence)")
            elif "dtmf" not in inputs:
                self.echo(f"{leg.tag} (this <Gather> does not listen to keys)")
            else:
                digits = self.collect(keys, finish, limit)
                if digits:
                    return Goto(action, goto_method, {"Digits": digits})
        if verb.get("actionOnEmptyResult") == "true":
            self.echo(f"{leg.tag} (no input: actionOnEmptyResult posts the action anyway)")
            return Goto(action, goto_method, {})
        self.echo(f"{leg.tag} (no input: Twilio goes on with the next verb)")
        return None

    def collect(self, keys: str, finish: str, limit: int | None) -> str:
        """Return the Digits Twilio reports for `keys` pressed at a <Gather>."""
        digits = ""
        for index, key in enumerate(keys):
            if finish and key == finish[:1]:
                # A lone finishing key is reported as the input itself.
                if not digits:
                    digits = key
                rest = keys[index + 1 :]
                break
            digits += key
            if limit and len(digits) >= limit:
                rest = keys[index + 1 :]
                break
        else:
            rest = ""
        if rest:
            self.echo(f"  (keys {rest!r} came after the input was complete: not heard)")
        return digits

    def dial(self, leg: Leg, verb: ET.Element, url: str) -> Goto | str | None:
        """Ring the <Dial> targets, screen callees, then report the outcome like Twilio."""
        targets = self.targets(verb)
        shown = ", ".join(number for _, number, _ in targets) or "nobody"
        together = " together" if len(targets) > 1 else ""
        self.echo(f"  [ringing {shown}{together}, timeout {verb.get('timeout', '30')} s]")
        answered: str | None = None
        dial_sid: str | None = None
        busy = tried = 0
        for kind, number, element in targets:
            tried += 1
            if kind != "Number":
                self.echo(f"  [<{kind}> {number} is not simulated: no answer]")
                continue
            if element.get("url"):
                callee = self.callee_leg(leg, verb, number)
                dial_sid = callee.sid
                self.echo(f"  [{number} picks up; its screening runs before you are connected]")
                screening = Goto(urljoin(url, element.get("url")), self.method(element))
                ended = self.follow(callee, screening)
                if ended == ENDED:
                    answered = number
                    break
                self.echo(f"  [{number} does not accept: {self.describe_end(ended)}]")
                continue
            dial_sid = new_sid("CA")
            reply = self.ask(leg, f"does {number} answer? [y/n/b=busy]").lower()
            if reply == HANGUP:
                return self.hang_up_while_ringing(leg, verb, url, dial_sid)
            if reply in YES:
                answered = number
                break
            if reply in BUSY:
                busy += 1
                self.echo(f"  [{number} is busy]")
            else:
                self.echo(f"  [{number} does not answer]")
        if answered:
            status = "completed"
            self.echo(
                f"  [connected to {answered}: you talk for {TALK_SECONDS} s, "
                f"then {answered} hangs up]"
            )
            self.simulated_seconds += TALK_SECONDS
        elif not targets:
            status = "failed"
        else:
            status = "busy" if busy and busy == tried else "no-answer"
        self.echo(f"  [dial result: {status}]")
        params = {
            "DialCallStatus": status,
            "DialCallSid": dial_sid or new_sid("CA"),
            "DialBridged": "true" if answered else "false",
        }
        callbacks: list[Callback] = []
        if answered:
            params["DialCallDuration"] = str(TALK_SECONDS)
            recording = fake_recording(TALK_SECONDS)
            if (verb.get("record") or "false") not in ("false", "do-not-record"):
                params.update(recording)
            if verb.get("recordingStatusCallback"):
                callbacks.append(
                    Callback(
                        urljoin(url, verb.get("recordingStatusCallback")),
                        self.method(verb, "recordingStatusCallbackMethod"),
                        {**recording, **recording_status("DialVerb")},
                        with_call_params=False,
                    )
                )
        if verb.get("action"):
            return Goto(urljoin(url, verb.get("action")), self.method(verb), params, callbacks)
        for callback in callbacks:
            self.callback(leg, callback)
        return None

    @staticmethod
    def targets(verb: ET.Element) -> list[tuple[str, str, ET.Element]]:
        """Return what a <Dial> rings: (noun, address, element) for each target."""
        found = [(child.tag, (child.text or "").strip(), child) for child in verb]
        if not found and (verb.text or "").strip():
            found.append(("Number", verb.text.strip(), verb))
        return found

    @staticmethod
    def callee_leg(leg: Leg, verb: ET.Element, number: str) -> Leg:
        """Return the outbound-dial leg Twilio creates to ring `number`."""
        caller = verb.get("callerId") or leg.params.get("From", "")
        return Leg(
            params={
                "CallSid": new_sid("CA"),
                "AccountSid": ACCOUNT_SID,
                "From": caller,
                "To": number,
                "Caller": caller,
                "Called": number,
                "CallStatus": "in-progress",
                "Direction": "outbound-dial",
                "ParentCallSid": leg.sid,
                "ApiVersion": API_VERSION,
            },
            number=number,
            callee=True,
        )

    def hang_up_while_ringing(self, leg: Leg, verb: ET.Element, url: str, dial_sid: str) -> str:
        """The caller gives up during the ringing: Twilio still requests the Dial action."""
        self.echo("  [the caller hangs up while it rings]")
        if verb.get("action"):
            params = {
                "CallStatus": "completed",
                "DialCallStatus": "canceled",
                "DialCallSid": dial_sid,
                "DialBridged": "false",
            }
            # Twilio ignores the TwiML of this request: the caller is gone.
            self.fetch(leg, Goto(urljoin(url, verb.get("action")), self.method(verb), params))
        return CALLER_HUNG_UP

    def record(self, leg: Leg, verb: ET.Element, url: str) -> Goto | str | None:
        """Take the caller's message as typed text and post a fake recording like Twilio."""
        limit = verb.get("maxLength", "3600")
        finish = verb.get("finishOnKey", "1234567890*#")
        beep = "" if verb.get("playBeep") == "false" else "[beep] "
        self.echo(f"  {beep}[recording, at most {limit} s]")
        answer = self.ask(leg, "your message (rec: words; - or Enter for nothing)")
        if answer.lower() == HANGUP:
            return CALLER_HUNG_UP
        words = answer
        if answer.lower().startswith(RECORDING_PREFIX):
            words = answer[len(RECORDING_PREFIX) :]
        words = words.strip()
        if not words or words == SILENCE or set(words.replace(" ", "")) <= DTMF_KEYS:
            self.echo("  (empty recording: Twilio skips the action and goes on with the next verb)")
            return None
        maximum = int(limit) if limit.isdigit() and int(limit) > 0 else 3600
        seconds = min(maximum, max(2, math.ceil(len(words.split()) / 2.5)))
        self.simulated_seconds += seconds
        recording = fake_recording(seconds)
        ended_by = "#" if "#" in finish else (finish[:1] or HANGUP)
        params = {**recording, "Digits": ended_by}
        callbacks: list[Callback] = []
        if verb.get("recordingStatusCallback"):
            callbacks.append(
                Callback(
                    urljoin(url, verb.get("recordingStatusCallback")),
                    self.method(verb, "recordingStatusCallbackMethod"),
                    {**recording, **recording_status("RecordVerb")},
                    with_call_params=False,
                )
            )
        if verb.get("transcribeCallback"):
            transcription = {
                "TranscriptionSid": new_sid("TR"),
                "TranscriptionText": words,
                "TranscriptionStatus": "completed",
                "RecordingSid": recording["RecordingSid"],
                "RecordingUrl": recording["RecordingUrl"],
            }
            callbacks.append(
                Callback(urljoin(url, verb.get("transcribeCallback")), "POST", transcription)
            )
        action = urljoin(url, verb.get("action")) if verb.get("action") else url
        return Goto(action, self.method(verb), params, callbacks)


def fake_recording(seconds: int) -> dict[str, str]:
    """Return the parameters of a recording Twilio would have stored."""
    sid = new_sid("RE")
    return {
        "RecordingSid": sid,
        "RecordingUrl": f"https://api.twilio.com/{API_VERSION}/Accounts/{ACCOUNT_SID}"
        f"/Recordings/{sid}",
        "RecordingDuration": str(seconds),
    }


def recording_status(source: str) -> dict[str, str]:
    """Return the extra parameters of a recordingStatusCallback."""
    return {
        "RecordingStatus": "completed",
        "RecordingChannels": "1",
        "RecordingSource": source,
        "RecordingStartTime": formatdate(usegmt=True),
    }


# ------------------------------------------------------------------ command line


def called_number(settings: Settings, value: str) -> str:
    """Return the number to call: a number, or `office` / `emergency` from the settings."""
    word = value.strip().lower()
    if word == "office":
        return settings.office.numbers[0]
    if word == "emergency":
        return settings.emergency.numbers[0]
    return international(value, "--to")


def calling_number(value: str) -> str:
    """Return the caller ID to send: a number, `anonymous`, or a sip:/client: address."""
    word = value.strip()
    if word.lower() in ("anonymous", "restricted", "unknown", "+266696687"):
        return word
    if word.lower().startswith(("sip:", "client:")):
        return word
    return international(word, "--from")


def international(value: str, option: str) -> str:
    """Return `value` in E.164 (Dutch notation allowed), or explain why it is not a number."""
    try:
        parsed = phonenumbers.parse(value, "NL")
    except phonenumbers.NumberParseException:
        raise ValueError(f"{option}: {value!r} is not a phone number") from None
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError(f"{option}: {value!r} is not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def place_call(
    settings: Settings,
    *,
    url: str,
    to: str,
    from_: str,
    keys: str | None,
    interactive: bool,
    echo: Callable[[str], None] = print,
    read: Callable[[str], str] = input,
    transport: Transport | None = None,
) -> int:
    """Place one call for `ivr call`; return the exit code (0 fine, 1 the service failed)."""
    telephone = Telephone(
        transport=transport or HttpTransport(),
        auth_token=settings.twilio_auth_token.get_secret_value(),
        base_url=url,
        public_url=settings.public_url,
        answers=Answers(parse_script(keys), interactive=interactive, read=read),
        echo=echo,
    )
    return telephone.call(to=to, from_=from_).exit_code
