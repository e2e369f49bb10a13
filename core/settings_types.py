"""The building blocks of the settings: strict sections, phone numbers, countries, schedules."""

from __future__ import annotations

from datetime import date, time
from typing import Annotated, Literal

import phonenumbers
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def international_number(value: str) -> str:
    """Accept only a valid phone number written in E.164 (+31318584900)."""
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{value!r} is not a phone number in international format") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"{value!r} is not a valid phone number")
    formatted = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if formatted != value:
        raise ValueError(f"{value!r} must be written in E.164, as {formatted!r}")
    return value


PhoneNumber = Annotated[str, AfterValidator(international_number)]


def _country(value: str) -> str:
    """Accept a country phonenumbers knows by its ISO 3166 code (NL, BE); never "001"."""
    code = value.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{value!r} is not a country code (two letters, as NL or BE)")
    return code


Country = Annotated[str, AfterValidator(_country)]


class Strict(BaseModel):
    """Base for settings sections: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Schedule(Strict):
    """Opening hours of a line or department, in the service's time zone."""

    days: list[Weekday] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"])
    opens: time = time(8, 30)
    closes: time = time(17, 30)
    public_holidays_closed: bool = True
    closed_dates: list[date] = Field(default_factory=list)

    @model_validator(mode="after")
    def _opens_before_closes(self) -> Schedule:
        if self.opens >= self.closes:
            raise ValueError("opens must be earlier than closes")
        return self
