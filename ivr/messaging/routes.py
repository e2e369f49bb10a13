"""Twilio's messaging webhooks: engineers acknowledge by SMS reply, and delivery reports."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Blueprint, Response, request
from sqlalchemy import select
from twilio.twiml.messaging_response import MessagingResponse

from core.clock import utcnow
from core.db import db
from core.settings import current_settings
from ivr import params
from ivr.messaging.texts import listed
from ivr.prompts import fill
from ivr.signatures import twilio_only
from tickets import lifecycle, paging
from tickets.models import OutboxMessage, StaffUser, Ticket

log = logging.getLogger(__name__)

bp = Blueprint("sms", __name__, url_prefix="/sms")

ACK_WORDS = ("1", "ok", "oke", "okay", "ack")
# Twilio's message statuses, ranked: a late "sent" never overrides "delivered".
DELIVERY_RANK = {
    "queued": 1,
    "accepted": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "read": 5,
}
FAILED = ("undelivered", "failed")
# Our statuses that no later report changes.
FINAL = ("delivered", "failed", "cancelled")


def reply(text: str | None = None) -> Response:
    """Return TwiML that answers the sender with `text`, or says nothing."""
    response = MessagingResponse()
    if text:
        response.message(text)
    return Response(str(response), status=200, mimetype="text/xml")


def _staff_by_phone(number: str | None) -> StaffUser | None:
    if not number:
        return None
    return db.session.scalar(
        select(StaffUser)
        .where(StaffUser.phone == number, StaffUser.active.is_(True))
        .order_by(StaffUser.id)
        .limit(1)
    )


@dataclass(frozen=True)
class Named:
    """What an SMS reply names: one ticket to acknowledge, or the answer's key and values."""

    ticket: Ticket | None = None
    answer: str | None = None
    tickets: tuple[str, ...] = ()


def _ticket_named(body: str, staff: StaffUser) -> Named:
    """Return the ticket an SMS reply names among those paged to its sender; never a guess.

    "1" or "ok" means the one ticket still waiting that the sender was paged for; with more,
    the answer lists them and asks which. A ticket number must be one paged to the sender.
    """
    word = body.strip().strip(".!").lower()
    paged = paging.paged_tickets(db.session, staff, now=utcnow())
    if word in ACK_WORDS:
        waiting = [ticket for ticket in paged if paging.is_waiting(ticket)]
        if len(waiting) > 1:
            numbers = tuple(ticket.number for ticket in waiting)
            return Named(answer="sms_which_ticket", tickets=numbers)
        if waiting or paged:  # none waiting: the newest, answered "already acknowledged"
            return Named(ticket=(waiting or paged)[0])
        return Named(answer="sms_nothing_to_ack")
    ticket_id = Ticket.id_from_number(word)
    if ticket_id is None:
        return Named(answer="sms_help")
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None:
        return Named(answer="sms_unknown_ticket")
    if ticket not in paged:
        log.info("SMS from %s names ticket %s they were not paged for", staff.email, word)
        return Named(answer="sms_not_paged")
    return Named(ticket=ticket)


def _acknowledge(staff: StaffUser, ticket: Ticket) -> str:
    """Acknowledge `ticket` as `staff`; return the key of the answer."""
    if ticket.status == "closed":
        return "sms_ack_closed"
    if ticket.acknowledged_at is not None and ticket.acknowledged_by_id != staff.id:
        return "sms_ack_already"
    lifecycle.acknowledge_ticket(db.session, ticket=ticket, staff=staff, via="sms")
    log.info("ticket %s acknowledged by %s by SMS", ticket.number, staff.email)
    return "sms_ack_confirm"


@bp.post("/incoming")
@twilio_only
def incoming():
    """Acknowledge a ticket from a staff member's reply; a stranger learns nothing."""
    settings = current_settings()
    staff = _staff_by_phone(params.caller_id(request.form.get("From")))
    if staff is None:
        log.info("SMS from a number that is no staff member's: ignored")
        return reply()
    body = params.text(request.form.get("Body"), 160) or ""
    named = _ticket_named(body, staff)
    ticket, answer = named.ticket, named.answer
    if ticket is not None:
        try:
            answer = _acknowledge(staff, ticket)
        except lifecycle.LifecycleError:
            answer = "sms_ack_closed"
    texts = settings.messages[settings.default_language]
    name = ticket.acknowledged_by.name if ticket and ticket.acknowledged_by else ""
    number = ticket.number if ticket is not None else body.strip()[:12]
    tickets = listed(list(named.tickets))
    return reply(fill(texts[answer], {"number": number, "name": name, "tickets": tickets}))


@bp.post("/status")
@twilio_only
def status():
    """Record a message's delivery: sent, delivered, or failed with Twilio's error code."""
    sid = params.text(request.form.get("MessageSid"), 64)
    state = (params.text(request.form.get("MessageStatus"), 20) or "").lower()
    ref = params.text(request.args.get("ref"), 64)
    if not sid or state not in DELIVERY_RANK:
        return ("", 204)
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.provider_id == sid))
    if message is None and ref:
        message = db.session.scalar(
            select(OutboxMessage).where(OutboxMessage.idempotency_key == ref)
        )
    if message is None:
        return ("", 204)
    _apply_delivery(message, sid, state, request.form.get("ErrorCode"))
    return ("", 204)


def _apply_delivery(message: OutboxMessage, sid: str, state: str, error: str | None) -> None:
    """Move the message's status forward by Twilio's report; a final status stays as it is.

    Reports come late, twice and out of order: an "undelivered" after "delivered" is old news.
    """
    message.provider_id = message.provider_id or sid
    if message.status in FINAL:
        pass  # only the provider's id and the times below are kept
    elif state in FAILED:
        message.status = "failed"
        message.last_error = f"Twilio: {state}" + (f" (error {error[:10]})" if error else "")
    elif state == "delivered":
        message.status = "delivered"
    elif message.status in ("sending", "pending"):
        # Twilio has it, before our own record of sending was written (a crash, a slow commit).
        message.status = "sent"
    message.sent_at = message.sent_at or utcnow()
    message.lease_until = None
    db.session.commit()
