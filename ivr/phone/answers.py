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
BUSY = frozenset({"b", "busy"})


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


def parse_script(text: str | None) -> list[str]:
    """Split a `--keys` script into its comma-separated answers."""
    if not text or not text.strip():
        return []
    return [part.strip() for part in text.split(",")]
