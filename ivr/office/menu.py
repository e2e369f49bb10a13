"""Decide what office callers' keys and Twilio's answers mean, as plain functions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from core.settings import Colleague, Department, OfficeLine, Schedule, Settings
from ivr import params

RECEPTION = "reception"
REPEAT_KEY = "*"
# The call log's step for a key pressed at the menu: `menu:1`, `menu:invalid`, `menu:none`.
MENU_STEP = "menu"

_EXTENSION = re.compile(r"[0-9]{2,6}")
_DIAL_STATUSES = ("completed", "answered", "busy", "no-answer", "failed", "canceled")

ChoiceKind = Literal["department", "emergency", "colleague", "english", "repeat", "invalid", "none"]
DialOutcome = Literal["answered", "caller-gone", "missed"]


@dataclass(frozen=True)
class MenuChoice:
    """What a key pressed at the office menu asks for."""

    kind: ChoiceKind
    department: str | None = None


def route_office_choice(office: OfficeLine, digits: str | None) -> MenuChoice:
    """Return the menu option the keys stand for; anything but one known key is invalid."""
    keys = (digits or "").strip()
    if not keys:
        return MenuChoice("none")
    if len(keys) != 1:
        return MenuChoice("invalid")
    if keys == REPEAT_KEY:
        return MenuChoice("repeat")
    if keys == office.english_key:
        return MenuChoice("english")
    if keys == office.emergency_key:
        return MenuChoice("emergency")
    if keys == office.colleague_key:
        return MenuChoice("colleague")
    for name, department in office.departments.items():
        if keys == department.key:
            return MenuChoice("department", name)
    return MenuChoice("invalid")


def find_colleague(office: OfficeLine, digits: str | None) -> Colleague | None:
    """Return the colleague whose configured extension the caller typed, if any."""
    keys = (digits or "").strip()
    if not _EXTENSION.fullmatch(keys):
        return None
    for colleague in office.colleagues:
        if colleague.extension == keys:
            return colleague
    return None


def find_department(office: OfficeLine, name: str | None) -> Department | None:
    """Return the configured department called `name`, if any."""
    return office.departments.get((name or "").strip()[: params.MAX_INPUT])


def office_schedule(settings: Settings) -> Schedule:
    """Return the office's opening hours (reception, colleagues)."""
    return settings.schedule_for(settings.office.schedule)


def team_schedule(settings: Settings, department: Department) -> Schedule:
    """Return a department's hours: its own, else the office's, else the shared default."""
    return settings.schedule_for(department.schedule or settings.office.schedule)


def dial_outcome(dial_status: str | None, call_status: str | None) -> DialOutcome:
    """Tell whether a `<Dial>` was answered, the caller left meanwhile, or nobody answered."""
    if params.is_final(call_status):
        return "caller-gone"
    if params.call_status(dial_status) in ("completed", "answered"):
        return "answered"
    return "missed"


def menu_step(key: str) -> str:
    """Return the call-log step for a key (or `none`, `invalid`) at the menu, e.g. `menu:1`."""
    return f"{MENU_STEP}:{key}"


def menu_options(office: OfficeLine) -> list[tuple[str, str]]:
    """Return (key, label) of each menu option that sends the caller on, in key order."""
    options = [
        (department.key, name.replace("_", " ").capitalize())
        for name, department in office.departments.items()
    ]
    options += [(office.emergency_key, "Emergency line"), (office.colleague_key, "Other questions")]
    return sorted(options)


def chosen_option(office: OfficeLine, trail: str) -> str | None:
    """Return the key of the option a call-log trail shows the caller chose, if any.

    Invalid keys, silence, the repeat key and the English key choose nothing: the caller
    hears the menu again. The first option chosen counts; a caller never returns to the menu.
    """
    keys = {key for key, _ in menu_options(office)}
    for step in trail.split():
        kind, _, key = step.partition(":")
        if kind == MENU_STEP and key in keys:
            return key
    return None


def dial_step(target: str, dial_status: str | None) -> str:
    """Return the call-log step for a dial result, e.g. `dial:finance:no-answer`."""
    status = params.call_status(dial_status)
    return f"dial:{target}:{status if status in _DIAL_STATUSES else 'unknown'}"


def is_empty_recording(url: str | None, seconds: int | None) -> bool:
    """Return whether a `<Record>` result holds no message worth calling back for."""
    return url is None or seconds == 0
