"""Read what Twilio sends and what our own URLs carry: one parser per parameter.

Everything a webhook reads is untrusted (a caller's keys and speech, a carrier's caller ID, a
query string anyone can send), so each parser returns a plain value or None/0/'' and never
raises. Flows read parameters only through these functions, so one rule holds for both lines.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.phones import to_e164
from core.settings import Settings

# Longest value read from a key press or query parameter; anything longer is plainly wrong.
MAX_INPUT = 32
SPEECH_LIMIT = 1000
URL_LIMIT = 500
# Durations and sequence numbers beyond seven digits (115 days) are not real.
_MAX_NUMBER_DIGITS = 7
# Twilio's sids are two letters and 32 hex digits; anything far off that is not a sid.
_SID = re.compile(r"[A-Za-z0-9]{2,64}")

# Statuses of a call (CallStatus) after which it is over: the caller is gone.
CALL_FINAL_STATUSES = ("completed", "busy", "failed", "no-answer", "canceled")

# What Twilio and carriers put in From when the number is withheld.
WITHHELD = {"", "anonymous", "restricted", "unknown", "private", "unavailable", "+266696687"}


# The emergency line's triage keys, a fixed point of its call flow: 1 major outage, 2 urgent bug.
TRIAGE_KEYS = {"1": "outage", "2": "urgent_bug"}


def triage_reason(value: str | None) -> str | None:
    """Return the reason a triage key stands for; None for any other input."""
    return TRIAGE_KEYS.get((value or "").strip())


def text(value: str | None, limit: int) -> str:
    """Return `value` without control characters, whitespace collapsed, cut to `limit`."""
    if not value:
        return ""
    kept = "".join(
        " " if unicodedata.category(char).startswith(("C", "Z")) else char
        for char in value[: limit * 4]
    )
    return " ".join(kept.split())[:limit]


def sid(value: str | None) -> str | None:
    """Return a Twilio sid (CallSid, RecordingSid) as sent, or None when it cannot be one."""
    value = (value or "").strip()
    return value if _SID.fullmatch(value) else None


def digits(value: str | None) -> str:
    """Return keypad input cut to a sane length; control characters become '?' (no key)."""
    keys = (value or "")[:MAX_INPUT].strip()
    return "".join("?" if unicodedata.category(char) == "Cc" else char for char in keys)


def count(value: str | None, *, limit: int) -> int:
    """Return a counter from our own query string, clamped to 0..limit (0 when odd)."""
    number = (value or "").strip()[:MAX_INPUT]
    if not number.isascii() or not number.isdigit():
        return 0
    return min(int(number), limit)


def choice(value: str | None, choices: Collection[str], *, default: str) -> str:
    """Return a word from our own query string when it is one of `choices`, else `default`."""
    word = (value or "").strip()
    return word if word in choices else default


def index(value: str | None, size: int) -> int | None:
    """Return a list index from our own query string, or None when odd or out of range."""
    number = (value or "").strip()
    if not (number.isascii() and number.isdigit()) or len(number) > 3:
        return None
    position = int(number)
    return position if position < size else None


def id_list(value: str | None, *, limit: int = 10) -> frozenset[int]:
    """Return the row ids a comma-separated list in our own query carries; odd ones dropped."""
    ids = set()
    for part in (value or "")[: limit * 12].split(",")[:limit]:
        number = part.strip()
        if number.isascii() and number.isdigit() and len(number) <= 10:
            ids.add(int(number))
    return frozenset(ids)


def whole_number(value: str | None) -> int | None:
    """Return a duration in seconds or a sequence number Twilio sent, or None when odd."""
    number = (value or "").strip()
    if not (number.isascii() and number.isdigit()) or len(number) > _MAX_NUMBER_DIGITS:
        return None
    return int(number)


def confidence(value: str | None) -> float | None:
    """Return speech recognition confidence (0 to 1), or None when missing or odd."""
    number = (value or "").strip()
    if not number or len(number) > 20:
        return None
    try:
        parsed = float(number)
    except ValueError:
        return None
    return parsed if math.isfinite(parsed) and 0.0 <= parsed <= 1.0 else None


def speech(value: str | None) -> str | None:
    """Return a caller's spoken words fit to store, or None when there are none."""
    return text(value, SPEECH_LIMIT) or None


@dataclass(frozen=True)
class Utterance:
    """What a real-time transcription callback says the caller said."""

    text: str
    confidence: float | None


def transcription_data(value: str | None) -> Utterance | None:
    """Return the words of a `TranscriptionData` (JSON: transcript, confidence), or None."""
    if not value or len(value) > SPEECH_LIMIT * 8:
        return None
    try:
        data = json.loads(value)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    words = speech(data.get("transcript") if isinstance(data.get("transcript"), str) else None)
    if words is None:
        return None
    raw = data.get("confidence")
    number = str(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None
    return Utterance(words, confidence(number))


def recording_url(value: str | None) -> str | None:
    """Return a recording URL Twilio sent, or None when it is not a plain https URL.

    Twilio's recordings are always served over https; anything else is not from Twilio.
    """
    url = (value or "").strip()
    if not url or len(url) > URL_LIMIT or not (url.isascii() and url.isprintable()):
        return None
    if " " in url:
        return None
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return None
    return url


def raw_caller(value: str | None) -> str:
    """Return the From parameter as sent, or '' (withheld) when it carries control characters."""
    value = (value or "")[:64]
    if any(unicodedata.category(char) == "Cc" for char in value):
        return ""
    return value.strip()


def caller_id(raw: str | None) -> str | None:
    """Return the caller's number in E.164, or None when withheld, SIP/client or unusable."""
    value = raw_caller(raw)
    if value.lower() in WITHHELD or len(value) > 32:
        return None
    if value.lower().startswith(("sip:", "client:")):
        return None
    return to_e164(value)


def call_status(value: str | None) -> str:
    """Return a CallStatus or DialCallStatus, lower case, cut to the column's size."""
    return (value or "").strip().lower()[:20]


def is_final(status: str | None) -> bool:
    """Return whether a call with this CallStatus is over (the caller is gone)."""
    return call_status(status) in CALL_FINAL_STATUSES


def language(settings: Settings, value: str | None) -> str:
    """Return the prompt language our own query asks for, or the default for anything unknown."""
    requested = (value or "").strip()[:MAX_INPUT]
    return requested if requested in settings.prompts else settings.default_language
