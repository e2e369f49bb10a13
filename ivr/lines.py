"""Tell which line a call is for from the number it was made to."""

from __future__ import annotations

from core.settings import Settings
from ivr.params import caller_id
from tickets.urgent import EMERGENCY_LINE

OFFICE = "office"
EMERGENCY = EMERGENCY_LINE


def line_for_number(settings: Settings, called: str | None) -> str:
    """Return the line of the called number; unknown numbers get the office line."""
    number = caller_id((called or "").strip())
    if number in settings.emergency.numbers:
        return EMERGENCY
    return OFFICE
