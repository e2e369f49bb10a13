"""Keep secrets that travel in URLs out of the logs: a calendar feed's token, a token in a query.

A calendar feed's URL is its only key (`/oncall/feed/<token>.ics`), so a log line with the path
would be a copy of the key for whoever reads the logs. API and metrics tokens belong in the
`Authorization` header and are never read from a query, but a client that puts one there
(`?access_token=...`) must not leave it in the log either. Applied to gunicorn's access and error
logs (`ivr serve`), to werkzeug's development server, and to the service's own lines that name a
path. Kept free of the app's imports: gunicorn's master loads it before any worker exists.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
# URL rules (werkzeug's notation) whose variables are secrets. A test checks that every rule of
# the app with a token, secret, password or key in a variable's name is listed here.
SECRET_RULES = ("/oncall/feed/<token>.ics",)
# Query parameters whose value is not logged: their name holds one of these words.
SECRET_QUERY_WORDS = ("token", "secret", "password", "passwd", "apikey", "api_key", "signature")

# Inside a log line a URL's part ends at a space, a quote or (for a query value) `&` and `#`.
_PART = r"[^/?#\s\"']+"
_VALUE = r"[^&#\s\"']*"


def _rule_pattern(rule: str) -> re.Pattern:
    """Return a pattern of a rule's paths whose groups are the fixed text around each variable."""
    pieces = re.split(r"<[^>]+>", rule)
    return re.compile(_PART.join(f"({re.escape(piece)})" for piece in pieces))


def _rule_replacement(rule: str) -> str:
    count = len(re.findall(r"<[^>]+>", rule))
    return REDACTED.join(f"\\g<{index + 1}>" for index in range(count + 1))


_PATHS = [(_rule_pattern(rule), _rule_replacement(rule)) for rule in SECRET_RULES]
_QUERY = re.compile(
    rf"([?&][^=&#\s\"']*(?:{'|'.join(SECRET_QUERY_WORDS)})[^=&#\s\"']*=){_VALUE}", re.IGNORECASE
)


def redact(text: str) -> str:
    """Return a path, URL or whole log line with the secrets in its URLs replaced."""
    for pattern, replacement in _PATHS:
        text = pattern.sub(replacement, text)
    if "?" in text:
        text = _QUERY.sub(rf"\g<1>{REDACTED}", text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that takes the secrets out of every URL in a record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def redact_logger(logger: logging.Logger) -> None:
    """Make `logger` redact every line it is given (once, however often it is called)."""
    if not any(isinstance(existing, RedactingFilter) for existing in logger.filters):
        logger.addFilter(RedactingFilter())
