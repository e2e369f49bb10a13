"""What the end of an emergency call causes: paging when nobody took it, the caller's SMS."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from core.clock import utcnow
from core.settings import Settings
from ivr import calls
from ivr.hours import next_opening
from tickets import paging, transcripts
from tickets.models import TicketCall


def _next_opening(settings: Settings, now: datetime) -> datetime | None:
    schedule = settings.schedule_for(settings.emergency.schedule)
    return next_opening(schedule, now, zone=settings.zone, country=settings.holiday_country)


def after_call(
    settings: Settings, rules: paging.PagingPolicy
) -> Callable[[Session, TicketCall], None]:
    """Return what to add to the transaction that settles an emergency call."""

    def then(session: Session, call: TicketCall) -> None:
        now = utcnow()
        paging.start(
            session,
            ticket=call.ticket,
            now=now,
            next_opening=_next_opening(settings, now),
            rules=rules,
            # Only a voicemail left has words to wait for: a caller who hung up at the beep
            # left none, whatever the transcription says later.
            transcribing=call.outcome == "voicemail"
            and call.transcript_state == transcripts.TRANSCRIBING,
        )
        log_row = calls.get_call(session, call.sid)
        language = log_row.language if log_row and log_row.language else settings.default_language
        paging.inform_caller(
            session, ticket=call.ticket, call=call, language=language, rules=rules, now=now
        )

    return then
