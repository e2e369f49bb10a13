"""Decide for the emergency line: triage keys, PIN lockout, who to ring, how a dial ended."""

from __future__ import annotations

from dataclasses import dataclass

from ivr import params

REASON_KEYS = {"1": "outage", "2": "urgent_bug"}
SEQUENTIAL = "sequential"
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class TriageStep:
    """What a triage key press leads to: ask again, or go on with this reason."""

    reason: str | None
    done: bool
    misses: int


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
    if params.is_final(call_status):
        return "abandoned"
    return "unanswered"


def is_locked_out(failures: int, threshold: int) -> bool:
    """Return whether this many recent PIN failures close PIN entry."""
    return failures >= threshold
