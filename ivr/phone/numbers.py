"""Read the numbers `ivr call --to/--from` is given: a number, or a line's name."""

from __future__ import annotations

import phonenumbers

from core.settings import Settings


def called_number(settings: Settings, value: str) -> str:
    """Return the number to call: a number, or `office` / `emergency` from the settings."""
    word = value.strip().lower()
    if word == "office":
        return settings.office.numbers[0]
    if word == "emergency":
        return settings.emergency.numbers[0]
    return international(value, "--to")


def calling_number(value: str) -> str:
    """Return the caller ID to send: a number, `anonymous`, or a sip:/client: address."""
    word = value.strip()
    if word.lower() in ("anonymous", "restricted", "unknown", "+266696687"):
        return word
    if word.lower().startswith(("sip:", "client:")):
        return word
    return international(word, "--from")


def international(value: str, option: str) -> str:
    """Return `value` in E.164 (Dutch notation allowed), or explain why it is not a number."""
    try:
        parsed = phonenumbers.parse(value, "NL")
    except phonenumbers.NumberParseException:
        raise ValueError(f"{option}: {value!r} is not a phone number") from None
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError(f"{option}: {value!r} is not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def is_valid_caller(value: str) -> bool:
    """Return whether a caller ID is a valid number (or deliberately none: withheld, SIP)."""
    if not value.startswith("+"):
        return True  # anonymous, sip:, client: say themselves what they are
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(value, None))
    except phonenumbers.NumberParseException:
        return False
