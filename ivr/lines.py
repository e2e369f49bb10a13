"""Tell which line a call is for, and normalise what Twilio says about the caller."""

from __future__ import annotations

from ivr.settings import Settings
from tickets.phones import to_e164

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
    return to_e164(value)
