"""Share what both call flows need: settings, action URLs, goodbyes, hours, guarded writes."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from flask import request, url_for
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from core.clock import utcnow
from core.db import db, is_database_unreachable
from core.settings import Engineer, Schedule, Settings, current_settings
from ivr import calls, params
from ivr.hours import describe_moment, is_open, next_opening
from ivr.prompts import Speaker
from ivr.signatures import twilio_only
from tickets import rota
from tickets.availability import OVERRIDE_MODES, get_hours_override

log = logging.getLogger(__name__)

T = TypeVar("T")


def action_url(endpoint: str, **state: object) -> str:
    """Return the relative URL of one of our webhooks, with the call state in its query."""
    values = {key: value for key, value in state.items() if value is not None}
    return url_for(endpoint, _external=False, **values)


def absolute_url(endpoint: str, **state: object) -> str:
    """Return the full URL of one of our webhooks, for TwiML attributes that want one.

    On the configured public base when there is one (signatures are checked over it), else on
    the URL this request came in on.
    """
    settings = current_settings()
    if settings.public_url:
        return settings.public_url + action_url(endpoint, **state)
    values = {key: value for key, value in state.items() if value is not None}
    return url_for(endpoint, _external=True, **values)


def hang_up() -> VoiceResponse:
    """End the call: the conversation is over or the caller has gone."""
    response = VoiceResponse()
    response.hangup()
    return response


def goodbye(response: VoiceResponse, speak: Speaker, key: str) -> VoiceResponse:
    """Say a closing prompt and hang up."""
    speak.say(response, key)
    response.hangup()
    return response


def guarded(action: Callable[..., T], /, *, context: object = None, **kwargs: object) -> T | None:
    """Run a database service function; when one write fails, log it and carry on.

    An unreachable database is re-raised instead: the app's outage handling then serves the
    caller from configuration, journals the call for replay and spares the next webhooks the
    wait, which a flow swallowing the error would prevent.
    """
    try:
        return action(db.session, **kwargs)
    except SQLAlchemyError as exc:
        try:
            db.session.rollback()
        except SQLAlchemyError:
            log.warning("rollback after the failed %s also failed", action.__name__)
        if is_database_unreachable(exc):
            log.error("database unreachable in %s; handing over (%s)", action.__name__, context)
            raise
        log.exception("%s failed; serving the caller without it (%s)", action.__name__, context)
        return None


def commit_now(*, context: object = None, guard: bool = True) -> bool:
    """Commit what the webhook has written so far: a write that must stand on its own.

    Guarded, a failed commit is logged and the call goes on without it (False is returned).
    With `guard=False` (the urgent ticket, which every later step needs) a failure is not
    swallowed: the app's outage handling serves the caller from configuration and journals
    the call instead.
    """
    if not db.session().in_transaction():
        return True
    if not guard:
        _commit(db.session)
        return True
    return guarded(_commit, context=context) is True


def _commit(session: Session) -> bool:
    session.commit()
    return True


def webhook(view: Callable[..., T]) -> Callable[..., T]:
    """Declare a call-flow webhook: only Twilio may call it, and it ends with one commit.

    The services only write (flush); a webhook's writes are committed here once it has
    answered, or earlier, visibly where the flow calls `commit_now`, for what must never be
    lost (a call's urgent ticket, an engineer's answer, a call's end).
    """
    signed = twilio_only(view)

    @functools.wraps(view)
    def answered(*args, **kwargs) -> T:
        answer = signed(*args, **kwargs)
        commit_now(context=request.endpoint)
        return answer

    return answered


def note(sid: str | None, step: str, language: str | None = None) -> None:
    """Append a step to the call's trail; it is written with the webhook's next commit."""
    if sid:
        guarded(calls.note_step, sid=sid, step=step, language=language)


def hours_override() -> str:
    """Return support's working-hours override; 'auto' when the database cannot say."""
    mode = guarded(get_hours_override)
    return mode if mode in OVERRIDE_MODES else "auto"


class Hours:
    """Opening-hours questions about one moment, with support's override applied."""

    def __init__(self, settings: Settings, now: datetime, override: str) -> None:
        self.settings = settings
        self.now = now
        self.override = override

    @classmethod
    def current(cls, settings: Settings) -> Hours:
        """Return the hours as they stand for this request."""
        return cls(settings, utcnow(), hours_override())

    def is_open(self, schedule: Schedule) -> bool:
        """Return whether `schedule` is open now."""
        return is_open(
            schedule,
            self.now,
            zone=self.settings.zone,
            country=self.settings.holiday_country,
            override=self.override,
        )

    def next_open(self, schedule: Schedule, speak: Speaker) -> str:
        """Say when `schedule` opens next ('at a later time' while forced closed)."""
        moment = None
        if self.override != "closed":
            moment = next_opening(
                schedule, self.now, zone=self.settings.zone, country=self.settings.holiday_country
            )
        return describe_moment(moment, self.now, speak)


def find_engineer(settings: Settings, number: str | None) -> Engineer | None:
    """Return the configured engineer with this phone number, in any notation, if any."""
    called = params.caller_id(number)
    for engineer in settings.emergency.engineers:
        if engineer.number == called:
            return engineer
    return None


def engineer_name(settings: Settings, session: Session, number: str | None) -> str:
    """Name the engineer on a leg by phone number: a configured one, else one of the rota."""
    configured = find_engineer(settings, number)
    if configured is not None:
        return configured.name
    staff = rota.engineer_with_phone(session, params.caller_id(number))
    return staff.name if staff is not None else "unknown engineer"
