"""The transcript of what a caller said on the emergency voicemail, as it comes in.

Twilio's real-time transcription sends it an utterance at a time; `finish_transcript` marks it
complete (or failed), which is what the pages about the ticket wait for (`tickets.paging`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, update
from sqlalchemy.orm import Session

from core.clock import utcnow
from tickets.models import Page, TicketCall, TicketEvent

# Where the transcript of a call's voicemail stands (`TicketCall.transcript_state`).
TRANSCRIBING = "transcribing"
TRANSCRIPT_DONE = "done"
TRANSCRIPT_FAILED = "failed"
# The timeline event of a finished transcript.
TRANSCRIBED = "transcribed"


def start_transcript(session: Session, *, call: TicketCall) -> None:
    """Note that the voicemail is being transcribed: paging waits a little for the transcript."""
    if call.transcript_state is None:
        call.transcript_state = TRANSCRIBING
    session.flush()


def add_transcript(
    session: Session,
    *,
    call: TicketCall,
    text: str,
    confidence: float | None,
    sequence: int | None = None,
) -> bool:
    """Add one finished utterance of the caller's voicemail to the call's transcript.

    One UPDATE, so two callbacks at once both land. Twilio numbers its callbacks: one whose
    `sequence` is not past the last one added (a retry) adds nothing. Returns whether it added.
    """
    joined = case(
        (TicketCall.transcription.is_(None), text),
        else_=TicketCall.transcription + " " + text,
    )
    values: dict = {"transcription": joined}
    if confidence is not None:  # the weakest utterance says how far the whole can be trusted
        values["transcript_confidence"] = case(
            (TicketCall.transcript_confidence <= confidence, TicketCall.transcript_confidence),
            else_=confidence,
        )
    statement = update(TicketCall).where(TicketCall.id == call.id)
    if sequence is not None:
        values["transcript_sequence"] = sequence
        statement = statement.where(
            (TicketCall.transcript_sequence.is_(None)) | (TicketCall.transcript_sequence < sequence)
        )
    added = session.execute(
        statement.values(**values).execution_options(synchronize_session=False)
    ).rowcount
    session.flush()
    session.refresh(call)
    return bool(added)


def finish_transcript(
    session: Session, *, call: TicketCall, failed: str | None = None, now: datetime | None = None
) -> bool:
    """Mark the transcript complete (or failed); return whether this call's state changed.

    Only a change notes the timeline, so Twilio's repeated callbacks add nothing twice.
    """
    state = TRANSCRIPT_FAILED if failed else TRANSCRIPT_DONE
    if call.transcript_state in (TRANSCRIPT_DONE, TRANSCRIPT_FAILED):
        return False
    call.transcript_state = state
    if failed:
        detail = f"failed: {failed}"
    elif call.transcription:
        confidence = call.transcript_confidence
        shown = f", confidence {confidence:.2f}" if confidence else ""
        detail = f"{len(call.transcription.split())} words{shown}"
    else:
        detail = "nothing was said"
    session.add(
        TicketEvent(
            ticket_id=call.ticket_id,
            kind=TRANSCRIBED,
            detail=detail,
            call_sid=call.sid,
            at=now or utcnow(),
        )
    )
    session.flush()
    return True


def transcript_complete(session: Session, *, ticket_id: int, now: datetime) -> bool:
    """Page now the transcript is in, if the ticket's first page still waits for it."""
    hurried = session.execute(
        update(Page)
        .where(
            Page.ticket_id == ticket_id,
            Page.state == "active",
            Page.level == 0,
            Page.next_step_at > now,
        )
        .values(next_step_at=now, version=Page.version + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(hurried)
