"""Play Twilio's real-time transcription for the terminal telephone: `<Start><Transcription>`.

Twilio forks the call's audio to a speech engine and posts what it hears to the
`statusCallbackUrl`: `transcription-started`, a `transcription-content` per finished utterance
(`TranscriptionData` is JSON with `transcript` and `confidence`, `Final` is "true"), and
`transcription-stopped` at `<Stop><Transcription>` or when the call ends. Here the caller's
typed `rec:` message is what the engine hears.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin

from ivr.phone.legs import Callback, Leg, new_sid

TRANSCRIPT_CONFIDENCE = 0.91


@dataclass
class LiveTranscription:
    """A `<Transcription>` running on a leg."""

    name: str
    url: str
    method: str
    language: str
    engine: str
    track: str
    sid: str
    sequence: int = 0


class Transcripts:
    """The transcription part of `Telephone`: start, hear, stop, each a signed callback."""

    def start_verb(self, leg: Leg, verb: ET.Element, url: str) -> None:
        """Run a `<Start>`: begin each `<Transcription>` it holds (others are not simulated)."""
        for child in verb:
            if child.tag != "Transcription" or not child.get("statusCallbackUrl"):
                self.echo(f"{leg.prefix}[<Start><{child.tag}> is not simulated; skipped]")
                continue
            live = LiveTranscription(
                name=child.get("name") or "",
                url=urljoin(url, child.get("statusCallbackUrl")),
                method=self.method(child, "statusCallbackMethod"),
                language=child.get("languageCode", "en-US"),
                engine=child.get("transcriptionEngine", "google"),
                track=child.get("track", "inbound_track"),
                sid=new_sid("GT"),
            )
            self.live.setdefault(leg.sid, []).append(live)
            self.echo(f"{leg.prefix or '  '}[transcribing what is said, {live.language}]")
            self._event(leg, live, "transcription-started", {})

    def stop_verb(self, leg: Leg, verb: ET.Element) -> None:
        """Run a `<Stop>`: end the named `<Transcription>` (an unnamed one ends them all)."""
        for child in verb:
            if child.tag == "Transcription":
                self.stop_transcripts(leg, child.get("name"))

    def hear(self, leg: Leg, words: str) -> None:
        """Post what every running transcription of the leg heard the caller say."""
        for live in self.live.get(leg.sid, []):
            if live.track not in ("inbound_track", "both_tracks"):
                continue
            self.echo(f"  [the transcription hears: {words}]")
            data = {"transcript": words, "confidence": TRANSCRIPT_CONFIDENCE}
            self._event(
                leg,
                live,
                "transcription-content",
                {
                    "TranscriptionData": json.dumps(data, ensure_ascii=False),
                    "Final": "true",
                    "Track": "inbound_track",
                },
            )

    def stop_transcripts(self, leg: Leg, name: str | None = None) -> None:
        """End the leg's transcriptions (only `name`, when given)."""
        running = self.live.get(leg.sid, [])
        for live in [item for item in running if not name or item.name == name]:
            running.remove(live)
            self._event(leg, live, "transcription-stopped", {})

    def _event(self, leg: Leg, live: LiveTranscription, event: str, extra: dict) -> None:
        live.sequence += 1
        params = {
            "TranscriptionSid": live.sid,
            "TranscriptionEvent": event,
            "SequenceId": str(live.sequence),
            "Timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "LanguageCode": live.language,
            "TranscriptionEngine": live.engine,
            "ProviderName": live.engine.capitalize(),
            **extra,
        }
        self.callback(leg, Callback(live.url, live.method, params, with_call_params=False))
