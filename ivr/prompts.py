"""Speak configured prompts in the caller's language."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Response
from twilio.twiml.voice_response import Gather, VoiceResponse

from core.settings import Settings


class _KeepPlaceholder(dict):
    """Format mapping that leaves unknown {placeholders} readable instead of failing."""

    def __missing__(self, key: str) -> str:
        return ""


def fill(template: str, values: dict[str, object]) -> str:
    """Fill a configured text's {placeholders}; an unknown one stays empty instead of failing."""
    return template.format_map(_KeepPlaceholder(values))


@dataclass(frozen=True)
class Speaker:
    """Turns prompt keys into `<Say>` verbs for one language."""

    settings: Settings
    language: str

    @classmethod
    def for_language(cls, settings: Settings, language: str | None) -> Speaker:
        """Return a speaker for `language`, falling back to the default language."""
        if language not in settings.prompts:
            language = settings.default_language
        return cls(settings, language)

    def text(self, key: str, **values: object) -> str:
        """Return the prompt `key` with its placeholders filled in."""
        template = self.settings.prompts[self.language].get(key)
        if template is None:
            template = self.settings.prompts[self.settings.default_language][key]
        return fill(template, values)

    def say(self, verb: VoiceResponse | Gather, key: str, **values: object) -> None:
        """Append a `<Say>` of prompt `key` to a response or gather."""
        self.say_text(verb, self.text(key, **values))

    def say_text(self, verb: VoiceResponse | Gather, text: str) -> None:
        """Append a `<Say>` of literal text in this speaker's voice."""
        voice = self.settings.voices[self.language]
        verb.say(text, language=voice.language, voice=voice.voice)


def twiml(response: VoiceResponse) -> Response:
    """Return TwiML as a Flask response Twilio accepts."""
    return Response(str(response), status=200, mimetype="text/xml")
