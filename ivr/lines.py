"""Tell which line a call is for, and normalise what Twilio says about the caller."""

from __future__ import annotations

import phonenumbers

from ivr.settings import Settings

OFFICE = "office"
EMERGENCY = "emergency"

# What Twilio and carriers put in From when the number is withheld.
WITHHELD = {"", "anonymous", "restricted", "unknown", "private", "unavailable", "+266696687"}


def line_for_number(settings: Settings, called: str | None) -> str:
    """Return the line of the called number; unknown numbers get the office line."""
    number = caller_id((called or "").strip())
    if number in settings.emergency.numbers:
        return EMERGENCY
    return OFFICE


def caller_id(raw: str | None) -> str | None:
    """Return the caller's number in E.164, or None when withheld, SIP/client or unusable."""
    value = (raw or "").strip()
    if value.lower() in WITHHELD or len(value) > 32:
        return None
    if value.lower().startswith(("sip:", "client:")):
        return None
    try:
        parsed = phonenumbers.parse(value, "NL")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
