"""Whom the line may text: the one rule for every SMS to a caller, against SMS pumping.

Fraudsters call services from premium and far-away mobile ranges so that the service texts
them, and share in what each text costs. So a caller is texted only when all of this holds:
they were recognised on the call (a directory contact by caller ID, or by PIN); their number
is a mobile of an allowed country (never a satellite or non-geographic range); and the caps
are not reached: texts to one number in 24 hours, and caller texts of the whole line in an
hour. The caps are counted from the outbox, so every process and instance sees the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import phonenumbers
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tickets.models import ERASED, OutboxMessage

# Kinds of text to a caller; their recipient is the caller's number (see the outbox's index).
CALLER_TICKET = "caller_ticket"
CALLER_ACK = "caller_ack"
CALLER_RESOLVED = "caller_resolved"
# A major incident's update, and its resolution, to every caller on its tickets.
CALLER_INCIDENT = "caller_incident"
CALLER_INCIDENT_END = "caller_incident_end"
CALLER_KINDS = (CALLER_TICKET, CALLER_ACK, CALLER_RESOLVED, CALLER_INCIDENT, CALLER_INCIDENT_END)

# Why a caller is not texted. The quiet ones are no protection at work (a landline, a withheld
# number, texts turned off), so they are not noted on the ticket's timeline.
TEXTS_OFF = "caller texts are off"
NO_MOBILE = "no mobile number"
NOT_VERIFIED = "not verified on this call"
NON_GEOGRAPHIC = "a satellite or non-geographic number"
QUIET = (TEXTS_OFF, NO_MOBILE)
# phonenumbers' region of satellite and other numbers of no country (+881, +870, +882, ...).
NO_COUNTRY = "001"


@dataclass(frozen=True)
class CallerTextRules:
    """The rule's settings; the service builds them from `paging.caller_sms*`."""

    enabled: bool = False
    countries: tuple[str, ...] = ("NL", "BE")
    per_number_per_day: int = 10
    per_hour: int = 300


def number_problem(number: str | None, countries: tuple[str, ...]) -> str | None:
    """Return why a number can never be texted (no mobile, no country, a country not allowed)."""
    if not number:
        return NO_MOBILE
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return NO_MOBILE
    if not phonenumbers.is_valid_number(parsed):
        return NO_MOBILE
    region = phonenumbers.region_code_for_number(parsed)
    if region is None or region == NO_COUNTRY:
        return NON_GEOGRAPHIC
    if region not in countries:
        return f"{region} is not among paging.caller_sms_countries"
    if phonenumbers.number_type(parsed) != phonenumbers.PhoneNumberType.MOBILE:
        return NO_MOBILE
    return None


def cap_problem(
    session: Session, *, number: str, rules: CallerTextRules, now: datetime
) -> str | None:
    """Return which cap one more text to `number` would break, counted from the outbox.

    Both counts in one round trip, each its own subquery so each keeps its index.
    """
    to_number = (
        select(func.count())
        .select_from(OutboxMessage)
        .where(
            OutboxMessage.recipient == number,
            OutboxMessage.kind.in_(CALLER_KINDS),
            OutboxMessage.created_at > now - timedelta(days=1),
        )
        .scalar_subquery()
    )
    # The same condition as the outbox's partial index of caller texts, so it is used.
    line = (
        select(func.count())
        .select_from(OutboxMessage)
        .where(
            OutboxMessage.kind.in_(CALLER_KINDS),
            OutboxMessage.recipient != ERASED,
            OutboxMessage.created_at > now - timedelta(hours=1),
        )
        .scalar_subquery()
    )
    sent_to_number, sent_by_line = session.execute(select(to_number, line)).one()
    if sent_to_number >= rules.per_number_per_day:
        return f"the cap of {rules.per_number_per_day} texts a day to one number is reached"
    if sent_by_line >= rules.per_hour:
        return f"the cap of {rules.per_hour} caller texts an hour is reached"
    return None


def why_not_textable(
    session: Session,
    *,
    number: str | None,
    recognised: bool,
    rules: CallerTextRules,
    now: datetime,
) -> str | None:
    """Return why this caller may not be texted now, or None when they may.

    `recognised` says whether the caller was recognised on the call the text is about (by
    caller ID as a directory contact, or by PIN). Out of hours the same rule holds.
    """
    if not rules.enabled:
        return TEXTS_OFF
    if not number:
        return NO_MOBILE
    if not recognised:
        return NOT_VERIFIED
    problem = number_problem(number, rules.countries)
    if problem is not None:
        return problem
    return cap_problem(session, number=number, rules=rules, now=now)
