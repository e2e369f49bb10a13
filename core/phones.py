"""Phone numbers in any usual notation, made E.164: the one rule both sides use."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

DEFAULT_REGION = "NL"
# Longer than any phone number written with spaces and dashes; anything longer is not one.
MAX_NOTATION = 64


# A webhook parses the same few numbers again and again (our own lines, the caller's number at
# every step), and parsing is a fair share of its CPU; the answer depends on the text alone.
@lru_cache(maxsize=4096)
def to_e164(raw: str | None, *, region: str = DEFAULT_REGION) -> str | None:
    """Return a phone number in any usual notation as E.164, or None if it is not a valid one."""
    text = (raw or "").strip()
    if not text or len(text) > MAX_NOTATION:
        return None
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
