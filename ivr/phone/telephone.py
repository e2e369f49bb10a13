"""Be Twilio from a terminal: place a simulated, signed call against a running service.

`Telephone` plays Twilio's part: it posts signed webhooks through an injectable transport,
reads the TwiML that comes back and follows it verb by verb, asking `Answers` whenever the
caller (or an engineer being screened) would press keys, speak or pick up.
"""

from __future__ import annotations

import math
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from email.utils import formatdate
from urllib.parse import urlencode, urljoin, urlsplit

from twilio.request_validator import RequestValidator

from core.settings import Settings
from ivr.phone.answers import INTERACTIVE_HINT, Answers, parse_script
from ivr.phone.legs import (
    ACCOUNT_SID,
    API_VERSION,
    ENDED,
    HUNG_UP,
    REJECTED,
    Callback,
    CallResult,
    Goto,
    Leg,
    Sent,
    describe_end,
    new_sid,
)
from ivr.phone.transcripts import LiveTranscription, Transcripts
from ivr.phone.transport import CallFailed, HttpTransport, Reply, Transport
from ivr.phone.verbs import Verbs

DEFAULT_URL = "http://127.0.0.1:8000"
MAX_REQUESTS = 60
# Parameters too long or random to be worth reading in the transcript.
UNSHOWN = frozenset({"RecordingUrl", "RecordingSid", "DialCallSid", "RecordingStartTime"})
# Verbs Twilio allows in a <Number url> document, run on the callee's leg.
CALLEE_VERBS = frozenset({"Say", "Play", "Pause", "Gather", "Hangup", "Redirect"})


class Telephone(Verbs, Transcripts):
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
        # Real-time transcriptions running, per leg (<Start><Transcription>).
        self.live: dict[str, list[LiveTranscription]] = {}

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
        try:  # the call is over: so is what was transcribing it
            self.stop_transcripts(leg)
        except CallFailed as exc:
            self.problems.append(str(exc))
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
        self.echo(f"== call ended: {describe_end(ended)}, after {duration} s")
        for problem in self.problems:
            self.echo(f"!! {problem}")
        code = 1 if self.problems else 0
        return CallResult(leg.sid, ended, code, duration=duration, sent=self.sent)

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
            if verb.tag == "Start":
                self.start_verb(leg, verb, url)
                continue
            if verb.tag == "Stop":
                self.stop_verb(leg, verb)
                continue
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
        answers=Answers(parse_script(keys, warn=echo), interactive=interactive, read=read),
        echo=echo,
    )
    return telephone.call(to=to, from_=from_).exit_code
