"""Decide for the emergency line: triage keys, PIN lockout, who to ring, how a dial ended."""

from __future__ import annotations

from dataclasses import dataclass

from ivr import params

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


def triage_choice(digits: str | None, misses: int, max_misses: int) -> TriageStep:
    """Decide a triage answer: a valid key goes on; too many misses go on without a reason."""
    reason = params.triage_reason(digits)
    if reason is not None:
        return TriageStep(reason=reason, done=True, misses=misses)
    misses += 1
    return TriageStep(reason=None, done=misses >= max_misses, misses=misses)


def spoken_digits(number: str) -> str:
    """Return a ticket number as separate digits, so it is read out one by one."""
    return " ".join(number)


def engineers_to_ring(
    strategy: str, count: int, index: int, busy: frozenset[int] = frozenset()
) -> list[int]:
    """Return which engineers (by index) one `<Dial>` rings, those `busy` on a call left out.

    One after another, the first from `index` on who is not busy; all at once, all who are not.
    """
    if strategy == SEQUENTIAL:
        if index < 0:
            return []
        return [position for position in range(index, count) if position not in busy][:1]
    return [position for position in range(count) if position not in busy]


def next_engineer(strategy: str, count: int, index: int | None) -> int | None:
    """Return the engineer to ring after one who did not accept, or None when all were tried."""
    if strategy != SEQUENTIAL or index is None:
        return None
    following = index + 1
    return following if following < count else None


def without_busy(
    levels: list[tuple[int, tuple[tuple[int, str], ...]]], busy: frozenset[str]
) -> list[tuple[int, tuple[int, ...]]]:
    """Return each rota level's engineers, (staff id, phone), as staff ids, busy ones left out.

    A level whose engineers are all on a call stays, empty: the escalation passes it by for
    this one step and asks again at the next, so nobody is skipped for longer than their call.
    """
    return [
        (level, tuple(staff_id for staff_id, phone in engineers if phone not in busy))
        for level, engineers in levels
    ]


@dataclass(frozen=True)
class RingStep:
    """One `<Dial>` of the escalation: which round, which level, whom."""

    round: int
    level: int
    staff_ids: tuple[int, ...]


def next_ring_step(
    levels: list[tuple[int, tuple[int, ...]]],
    *,
    rounds: int,
    after: tuple[int, int] | None,
    previous: frozenset[int] = frozenset(),
) -> RingStep | None:
    """Return the next level to ring after (round, level) `after`, or None when all rang.

    `levels` are (level, staff ids) of who is on call now, level 1 first. Level after level,
    round after round. Whoever the previous dial rang is not rung again straight after it on
    another level (someone on two levels would otherwise ring twice in a row); a level left
    with nobody is skipped. A round of one level rings that level again.
    """
    numbers = [level for level, _ in levels]
    engineers = dict(levels)
    round_, position = (1, 0) if after is None else _following(numbers, after)
    while round_ <= rounds and numbers:
        level = numbers[position]
        same_level = after is not None and after[1] == level
        ids = tuple(i for i in engineers[level] if same_level or i not in previous)
        if ids:
            return RingStep(round=round_, level=level, staff_ids=ids)
        round_, position = _following(numbers, (round_, level))
    return None


def _following(numbers: list[int], at: tuple[int, int]) -> tuple[int, int]:
    """Return (round, position in `numbers`) of the step after (round, level) `at`."""
    round_, level = at
    later = [position for position, number in enumerate(numbers) if number > level]
    if later:
        return round_, later[0]
    return round_ + 1, 0


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
