"""Model a simulated call: its legs, Twilio's requests, and how a leg ends."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from email.utils import formatdate

ACCOUNT_SID = "AC" + "5" * 32
API_VERSION = "2010-04-01"

# How a TwiML document run ends.
ENDED = "ended"  # the document ran out of verbs: Twilio ends the call (or bridges a callee)
HUNG_UP = "hung up"  # <Hangup/>
REJECTED = "rejected"  # <Reject/>
CALLER_HUNG_UP = "caller hung up"


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


def describe_end(ended: str) -> str:
    """Say in words how the call ended."""
    return {
        ENDED: "the TwiML ran out of verbs, so Twilio hangs up",
        HUNG_UP: "the service hung up",
        REJECTED: "the service rejected the call",
        CALLER_HUNG_UP: "the caller hung up",
    }.get(ended, ended)


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
