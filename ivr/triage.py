"""Plain decisions of the emergency line: triage keys, odd input, who to ring, how a dial ended."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

REASON_KEYS = {"1": "outage", "2": "urgent_bug"}
SIMULTANEOUS = "simultaneous"
SEQUENTIAL = "sequential"
ANONYMOUS = "anonymous"
SPEECH_LIMIT = 1000
DIGITS_LIMIT = 32
URL_LIMIT = 500
# Twilio's sids are two letters and 32 hex digits; anything far off that is not a sid.
_SID = re.compile(r"^[A-Za-z0-9]{2,64}$")
# Statuses of the caller's own leg that mean the caller is gone.
_CALLER_GONE = {"completed", "canceled", "busy", "failed", "no-answer"}


@dataclass(frozen=True)
class TriageStep:
    """What a triage key press leads to: ask again, or go on with this reason."""

    reason: str | None
    done: bool
    misses: int


def clean_text(value: str | None, limit: int) -> str:
    """Return `value` without control characters, whitespace collapsed, cut to `limit`."""
    if not value:
        return ""
    kept = "".join(
        " " if unicodedata.category(char).startswith(("C", "Z")) else char
        for char in value[: limit * 4]
    )
    return " ".join(kept.split())[:limit]


def clean_caller(value: str | None) -> str:
    """Return the From parameter as sent, or '' (withheld) when it carries control characters."""
    value = (value or "")[:64]
    if any(unicodedata.category(char) == "Cc" for char in value):
        return ""
    return value.strip()


def clean_sid(value: str | None) -> str | None:
    """Return a Twilio sid as sent, or None when it is missing or cannot be a sid."""
    value = (value or "").strip()
    return value if _SID.match(value) else None


def clean_digits(value: str | None) -> str:
    """Return keypad input cut to a sane length; control characters become '?' (no key)."""
    text = (value or "")[:DIGITS_LIMIT].strip()
    return "".join("?" if unicodedata.category(char) == "Cc" else char for char in text)


def caller_key(caller: str | None) -> str:
    """Return the key PIN failures are counted under: the E.164 number or 'anonymous'."""
    return caller or ANONYMOUS


def reason_for_key(digits: str | None) -> str | None:
    """Return the reason of a triage key: 1 major outage, 2 urgent bug."""
    return REASON_KEYS.get((digits or "").strip())


def triage_choice(digits: str | None, misses: int, max_misses: int) -> TriageStep:
    """Decide a triage answer: a valid key goes on; too many misses go on without a reason."""
    reason = reason_for_key(digits)
    if reason is not None:
        return TriageStep(reason=reason, done=True, misses=misses)
    misses += 1
    return TriageStep(reason=None, done=misses >= max_misses, misses=misses)


def parse_count(value: str | None, *, limit: int) -> int:
    """Return a small non-negative counter from our own query string; 0 when odd."""
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 3:
        return 0
    return min(int(text), limit)


def parse_index(value: str | None, count: int) -> int | None:
    """Return a list index from a query string, or None when odd or out of range."""
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 3:
        return None
    index = int(text)
    return index if index < count else None


def parse_seconds(value: str | None) -> int | None:
    """Return a duration in seconds Twilio sent, or None when odd."""
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 7:
        return None
    return int(text)


def parse_confidence(value: str | None) -> float | None:
    """Return speech recognition confidence (0 to 1), or None when missing or odd."""
    text = (value or "").strip()
    if not text or len(text) > 20:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) and 0.0 <= number <= 1.0 else None


def clean_speech(value: str | None) -> str | None:
    """Return a caller's spoken description fit to store, or None when there is none."""
    text = clean_text(value, SPEECH_LIMIT)
    return text or None


def clean_recording_url(value: str | None) -> str | None:
    """Return a recording URL Twilio sent, or None when it is not a plain https URL."""
    text = (value or "").strip()
    if not text or len(text) > URL_LIMIT or not (text.isascii() and text.isprintable()):
        return None
    if " " in text:
        return None
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.hostname:
        return None
    return text


def spoken_digits(number: str) -> str:
    """Return a ticket number as separate digits, so it is read out one by one."""
    return " ".join(number)


def engineers_to_ring(strategy: str, count: int, index: int) -> list[int]:
    """Return which engineers (by index) one `<Dial>` rings."""
    if strategy == SEQUENTIAL:
        return [index] if 0 <= index < count else []
    return list(range(count))


def next_engineer(strategy: str, count: int, index: int | None) -> int | None:
    """Return the engineer to ring after one who did not accept, or None when all were tried."""
    if strategy != SEQUENTIAL or index is None:
        return None
    following = index + 1
    return following if following < count else None


def dial_verdict(
    *, dial_status: str | None, call_status: str | None, bridged: str | None, accepted: bool
) -> str:
    """Return how ringing the engineers ended: 'answered', 'abandoned' or 'unanswered'."""
    dial_status = (dial_status or "").strip().lower()
    if (bridged or "").strip().lower() == "true" or (accepted and dial_status == "completed"):
        return "answered"
    if (call_status or "").strip().lower() in _CALLER_GONE:
        return "abandoned"
    return "unanswered"


def is_locked_out(failures: int, threshold: int) -> bool:
    """Return whether this many recent PIN failures close PIN entry."""
    return failures >= threshold
