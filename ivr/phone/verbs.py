"""Play the TwiML verbs a caller interacts with: <Gather>, <Dial> and <Record>."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from urllib.parse import urljoin

from ivr.phone.answers import (
    BUSY,
    DTMF_KEYS,
    HANGUP,
    NO,
    RECORDING_PREFIX,
    SILENCE,
    SPEECH_PREFIX,
    YES,
)
from ivr.phone.legs import (
    CALLER_HUNG_UP,
    ENDED,
    HUNG_UP,
    Callback,
    Goto,
    Leg,
    callee_leg,
    describe_end,
    fake_recording,
    new_sid,
    recording_status,
)

# Simulated seconds of conversation once a <Dial> is bridged.
TALK_SECONDS = 45
SPEECH_CONFIDENCE = "0.92"


class Verbs:
    """The caller-facing verbs of `Telephone`: ask, take keys or speech, ring, record."""

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
        ringing = self.ring(leg, verb, url, targets)
        if isinstance(ringing, str):
            return ringing
        answered, dial_sid, status = ringing
        if answered:
            self.echo(
                f"  [connected to {answered}: you talk for {TALK_SECONDS} s, "
                f"then {answered} hangs up]"
            )
            self.simulated_seconds += TALK_SECONDS
        self.echo(f"  [dial result: {status}]")
        params = {
            "DialCallStatus": status,
            "DialCallSid": dial_sid or new_sid("CA"),
            "DialBridged": "true" if answered else "false",
        }
        callbacks = self.bridged_recording(verb, url, params) if answered else []
        if verb.get("action"):
            return Goto(urljoin(url, verb.get("action")), self.method(verb), params, callbacks)
        for callback in callbacks:
            self.callback(leg, callback)
        return None

    def ring(
        self, leg: Leg, verb: ET.Element, url: str, targets: list[tuple[str, str, ET.Element]]
    ) -> tuple[str | None, str | None, str] | str:
        """Ring each target in turn; return (who answered, DialCallSid, DialCallStatus).

        Returns how the caller's leg ended instead when the caller hangs up while it rings.
        """
        dial_sid: str | None = None
        busy = tried = 0
        for kind, number, element in targets:
            tried += 1
            if kind != "Number":
                self.echo(f"  [<{kind}> {number} is not simulated: no answer]")
                continue
            if element.get("url"):
                callee = callee_leg(leg, verb, number)
                dial_sid = callee.sid
                self.echo(f"  [{number} picks up; its screening runs before you are connected]")
                screening = Goto(urljoin(url, element.get("url")), self.method(element))
                ended = self.follow(callee, screening)
                if ended == ENDED:
                    return number, dial_sid, "completed"
                self.echo(f"  [{number} does not accept: {describe_end(ended)}]")
                continue
            dial_sid = new_sid("CA")
            reply = self.pick_up(leg, number)
            if reply == HANGUP:
                return self.hang_up_while_ringing(leg, verb, url, dial_sid)
            if reply in YES:
                return number, dial_sid, "completed"
            if reply in BUSY:
                busy += 1
                self.echo(f"  [{number} is busy]")
            else:
                self.echo(f"  [{number} does not answer]")
        if not targets:
            return None, dial_sid, "failed"
        return None, dial_sid, "busy" if busy and busy == tried else "no-answer"

    def pick_up(self, leg: Leg, number: str) -> str:
        """Ask whether a dialled number answers: y, n, b or hangup; ask again at a terminal."""
        question = f"{leg.tag} ? does {number} answer? [y/n/b=busy]"
        for _ in range(3):
            answer, typed = self.answers.next(question)
            reply = answer.strip().lower() or SILENCE
            if not typed:
                self.echo(f"{question} > {reply}")
            if reply in YES | NO | BUSY or reply in (HANGUP, SILENCE):
                return reply
            if not typed:
                break
            self.echo("  (answer y, n, b or hangup)")
        self.echo(f"  ({answer!r} is not y, n, b or hangup: taken as no answer)")
        return "n"

    def bridged_recording(
        self, verb: ET.Element, url: str, params: dict[str, str]
    ) -> list[Callback]:
        """Add a bridged call's length (and recording) to `params`; return its callbacks."""
        params["DialCallDuration"] = str(TALK_SECONDS)
        recording = fake_recording(TALK_SECONDS)
        if (verb.get("record") or "false") not in ("false", "do-not-record"):
            params.update(recording)
        if not verb.get("recordingStatusCallback"):
            return []
        callback = Callback(
            urljoin(url, verb.get("recordingStatusCallback")),
            self.method(verb, "recordingStatusCallbackMethod"),
            {**recording, **recording_status("DialVerb")},
            with_call_params=False,
        )
        return [callback]

    @staticmethod
    def targets(verb: ET.Element) -> list[tuple[str, str, ET.Element]]:
        """Return what a <Dial> rings: (noun, address, element) for each target."""
        found = [(child.tag, (child.text or "").strip(), child) for child in verb]
        if not found and (verb.text or "").strip():
            found.append(("Number", verb.text.strip(), verb))
        return found

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
        self.hear(leg, words)
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
