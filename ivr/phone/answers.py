"""Answer the terminal telephone's questions: a `--keys` script first, then the terminal."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

INTERACTIVE_HINT = (
    "Answer each ? with keys (1, 201#), Enter for silence, 'say: words' to speak, "
    "y/n/b when a number rings, your message at a recording, or 'hangup'."
)
DTMF_KEYS = frozenset("0123456789*#")
SILENCE = "-"
HANGUP = "hangup"
SPEECH_PREFIX = "say:"
RECORDING_PREFIX = "rec:"
YES = frozenset({"y", "yes", "j", "ja"})
NO = frozenset({"n", "no", "nee"})
BUSY = frozenset({"b", "busy"})
MESSAGE_PREFIXES = (SPEECH_PREFIX, RECORDING_PREFIX)


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


def is_answer(part: str) -> bool:
    """Return whether a piece of a script can stand as an answer of its own."""
    word = part.strip().lower()
    if word in ("", SILENCE, HANGUP) or word in YES | NO | BUSY:
        return True
    if word.startswith(MESSAGE_PREFIXES):
        return True
    return set(word.replace(" ", "")) <= DTMF_KEYS


def parse_script(text: str | None, warn: Callable[[str], None] | None = None) -> list[str]:
    """Split a `--keys` script into its comma-separated answers.

    A `rec:` or `say:` message may hold commas: what follows a comma and cannot be an answer
    of its own (not keys, y/n/b, hangup or another message) goes on the same message, said in
    `warn`. Write `\\,` for a comma that must stay in the message in any case.
    """
    if not text or not text.strip():
        return []
    answers: list[str] = []
    joined: set[int] = set()
    for raw in text.replace("\\,", "\0").split(","):
        part = raw.replace("\0", ",")
        previous = answers[-1] if answers else ""
        if previous.lower().startswith(MESSAGE_PREFIXES) and not is_answer(part):
            answers[-1] = f"{previous},{part.rstrip()}"
            joined.add(len(answers) - 1)
            continue
        answers.append(part.strip())
    for index in sorted(joined):
        if warn is not None:
            warn(f"(the commas in {answers[index]!r} are taken as part of the message)")
    return answers
