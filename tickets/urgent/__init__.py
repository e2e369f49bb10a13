"""Urgent tickets opened by emergency calls, a module per job.

- `opening`: put a call on its ticket (join an open one, or open one), once per call; find them;
- `timeline`: what happened on a call, on its ticket's timeline (triage, engineers, recordings);
- `outcomes`: how a call ended (answered, voicemail, nobody), settled once and only forward.

This module holds what other code needs without loading the rest: the priority, the name of
the emergency line, the ranked call outcomes and the timeline's event kinds.
"""

from __future__ import annotations

URGENT = "urgent"
# The line emergency calls come in on (`TicketCall.line`); the telephone side names it too.
EMERGENCY_LINE = "emergency"
RECOGNISED_BY = {"caller_id": "caller ID", "pin": "PIN"}

# Every outcome a ticket call can have, ranked. Later knowledge may improve an outcome (a
# voicemail arriving after the hang-up was settled), but an outcome never moves back to a
# lower rank, nor sideways between final outcomes.
OUTCOME_RANK = {
    "in_progress": 0,
    "abandoned_before_triage": 1,
    # Out of hours the service offers a voicemail at once: no message left is not a hang-up.
    "closed_no_message": 1,
    "abandoned_after_triage": 1,
    "abandoned_while_ringing": 1,
    "no_answer": 1,
    "refused": 1,
    "informed": 1,
    "voicemail": 2,
    "call_back": 2,
    "answered": 3,
}

# Timeline event kinds written for emergency calls.
TICKET_OPENED = "ticket_opened"
CALL_JOINED = "call_joined"
RECOGNISED = "recognised"
TRIAGE = "triage"
DESCRIPTION = "description"
ENGINEER_RUNG = "engineer_rung"
ENGINEER_REFUSED = "engineer_refused"
ENGINEER_ACCEPTED = "engineer_accepted"
ENGINEERS_UNAVAILABLE = "engineers_unavailable"
# Every engineer was on another call: nobody was rung, the caller was offered a call-back.
ENGINEERS_BUSY = "engineers_busy"
# The caller heard that their outage is a known incident (what, since when, the newest update).
INCIDENT_TOLD = "incident_told"
# The caller asked to be called back (tickets.callback_queue).
CALL_BACK_ASKED = "call_back_asked"
VOICEMAIL = "voicemail"
CALL_RECORDED = "call_recorded"
CALL_ENDED = "call_ended"
JOURNAL = "journal"
UNVERIFIED = "unverified"
LINE_CLOSED = "line_closed"

# How serious a reason is: a ticket's reason follows its most serious call.
REASON_RANK = {"urgent_bug": 1, "outage": 2}
