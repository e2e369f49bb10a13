"""Twilio's messaging webhooks: engineers acknowledge by SMS reply, and delivery reports."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Blueprint, Response, request
from sqlalchemy import select
from twilio.twiml.messaging_response import MessagingResponse

from core.clock import utcnow
from core.db import db, unit_of_work
from core.settings import current_settings
from ivr import params
from ivr.messaging.texts import listed
from ivr.prompts import fill
from ivr.signatures import twilio_only
from tickets import lifecycle, paged
from tickets.incidents import Incident
from tickets.incidents import pages as incident_pages
from tickets.models import TICKET_NUMBER_BASE, OutboxMessage, StaffUser, Ticket

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
    """What an SMS reply names: one ticket or incident to acknowledge, or the answer's key."""

    ticket: Ticket | None = None
    incident: Incident | None = None
    answer: str | None = None
    tickets: tuple[str, ...] = ()


def _incident_number(word: str) -> int | None:
    """Return the incident an SMS reply names ("i7", "incident 7", or a number below tickets')."""
    text = word.removeprefix("incident").removeprefix("i").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        return None
    number = int(text)
    return number if 0 < number < TICKET_NUMBER_BASE else None


def _waiting(staff: StaffUser, now) -> tuple[list[Ticket], list[Incident], list[Ticket]]:
    """Return what the sender was paged for and nobody acknowledged: tickets, incidents.

    A ticket in an incident is left out: the incident stands for it. Also returns every
    ticket paged to the sender, for the answer when nothing waits.
    """
    paged_for = paged.paged_tickets(db.session, staff, now=now)
    tickets = [t for t in paged_for if paged.is_waiting(t) and t.incident_id is None]
    incidents = incident_pages.paged_incidents(db.session, staff, now=now)
    open_ones = [i for i in incidents if i.is_open and i.acknowledged_at is None]
    return tickets, open_ones, paged_for


def _any_waiting(staff: StaffUser) -> Named:
    """Name the one thing waiting that the sender was paged for; with more, ask which."""
    now = utcnow()
    tickets, incidents, paged = _waiting(staff, now)
    if len(tickets) + len(incidents) > 1:
        listed_ = tuple(f"I{i.number}" for i in incidents) + tuple(t.number for t in tickets)
        return Named(answer="sms_which" if incidents else "sms_which_ticket", tickets=listed_)
    if incidents:
        return Named(incident=incidents[0])
    if tickets or paged:  # none waiting: the newest, answered "already acknowledged"
        return Named(ticket=(tickets or paged)[0])
    paged_incidents = incident_pages.paged_incidents(db.session, staff, now=now)
    if paged_incidents:
        return Named(incident=paged_incidents[0])
    return Named(answer="sms_nothing_to_ack")


def _ticket_named(body: str, staff: StaffUser) -> Named:
    """Return the ticket or incident an SMS reply names among those paged to its sender.

    "1" or "ok" means the one ticket or incident still waiting that the sender was paged
    for; with more, the answer lists them and asks which: it never guesses. A number must
    name a ticket or incident paged to the sender.
    """
    word = body.strip().strip(".!").lower()
    if word in ACK_WORDS:
        return _any_waiting(staff)
    number = _incident_number(word)
    if number is not None:
        incident = db.session.get(Incident, number)
        if incident is None:
            return Named(answer="sms_unknown_incident")
        if incident not in incident_pages.paged_incidents(db.session, staff, now=utcnow()):
            log.info("SMS from %s names incident %s they were not paged for", staff.email, number)
            return Named(answer="sms_incident_not_paged")
        return Named(incident=incident)
    ticket_id = Ticket.id_from_number(word)
    if ticket_id is None:
        return Named(answer="sms_help")
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None:
        return Named(answer="sms_unknown_ticket")
    if ticket not in paged.paged_tickets(db.session, staff, now=utcnow()):
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


def _acknowledge_incident(staff: StaffUser, incident: Incident) -> str:
    """Acknowledge the incident (and every ticket in it) as `staff`; return the answer's key."""
    if not incident.is_open:
        return "sms_incident_resolved"
    if incident.acknowledged_at is not None and incident.acknowledged_by_id != staff.id:
        return "sms_incident_already"
    try:
        incident_pages.acknowledge(
            db.session, incident=incident, staff=staff, via="sms", now=utcnow()
        )
    except incident_pages.NotOpen:
        db.session.rollback()
        return "sms_incident_resolved"
    log.info("incident %s acknowledged by %s by SMS", incident.number, staff.email)
    return "sms_incident_confirm"


@bp.post("/incoming")
@twilio_only
@unit_of_work
def incoming():
    """Acknowledge a ticket from a staff member's reply; a stranger learns nothing."""
    settings = current_settings()
    staff = _staff_by_phone(params.caller_id(request.form.get("From")))
    if staff is None:
        log.info("SMS from a number that is no staff member's: ignored")
        return reply()
    body = params.text(request.form.get("Body"), 160) or ""
    named = _ticket_named(body, staff)
    ticket, incident, answer = named.ticket, named.incident, named.answer
    if incident is not None:
        answer = _acknowledge_incident(staff, incident)
    elif ticket is not None:
        try:
            answer = _acknowledge(staff, ticket)
        except lifecycle.LifecycleError:
            answer = "sms_ack_closed"
    texts = settings.messages[settings.default_language]
    acknowledger = (incident or ticket).acknowledged_by if (incident or ticket) else None
    number = ticket.number if ticket is not None else body.strip()[:12]
    values = {
        "number": number,
        "incident": incident.number if incident is not None else number.lstrip("iI "),
        "name": acknowledger.name if acknowledger is not None else "",
        "tickets": listed(list(named.tickets)),
    }
    return reply(fill(texts[answer], values))


@bp.post("/status")
@twilio_only
@unit_of_work
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
