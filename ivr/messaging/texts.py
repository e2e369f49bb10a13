"""Write a queued message out: its text in the recipient's language, from the configuration.

Texts are rendered when the message is sent, not when it is queued, so a page sent after the
voicemail's transcription arrived carries it.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy.orm import Session

from core.settings import Settings
from ivr.prompts import Speaker, fill
from tickets import paging
from tickets.models import OutboxMessage, Ticket

SMS_VOICEMAIL_CHARS = 300
# Ticket numbers an SMS lists before it only says how many more (the e-mail lists all).
SMS_LISTED = 10


@dataclass(frozen=True)
class Text:
    """What goes out: a subject (e-mail only) and the body."""

    subject: str
    body: str


def _link(settings: Settings, number: str | None = None) -> str:
    """Return the dashboard's address of a ticket (or of the queue), outside any request."""
    base = settings.public_url or f"http://{settings.server.host}:{settings.server.port}"
    paths = current_app.url_map.bind("localhost")
    if number is None:
        return base + paths.build("dashboard.tickets")
    return base + paths.build("dashboard.ticket", {"number": number})


def _voicemail(ticket: Ticket) -> str | None:
    """Return the transcription of the ticket's newest voicemail, if there is one."""
    for call in reversed(ticket.calls):
        if call.transcription:
            return call.transcription.strip()
    return None


def ticket_fields(settings: Settings, ticket: Ticket, language: str) -> dict[str, str]:
    """Return the placeholders every text about a ticket may use."""
    speak = Speaker.for_language(settings, language)
    reason = speak.text(f"reason_{ticket.reason}" if ticket.reason else "reason_unknown")
    zone = settings.zone
    return {
        "number": ticket.number,
        "organization": ticket.organization.name if ticket.organization else "?",
        "contact": ticket.contact.name if ticket.contact else "?",
        "caller": ticket.caller or speak.text("caller_withheld"),
        "reason": reason,
        "when": ticket.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        "link": _link(settings, ticket.number),
    }


def _page(settings: Settings, message: OutboxMessage, table: dict[str, str]) -> Text:
    fields = ticket_fields(settings, message.ticket, message.language)
    transcript = _voicemail(message.ticket)
    fields["level"] = str(message.level or 1)
    if message.channel == "sms":
        text = (transcript or "")[:SMS_VOICEMAIL_CHARS]
        fields["voicemail"] = fill(table["page_voicemail"], {"text": text}) if transcript else ""
        return Text("", fill(table["page_sms"], fields))
    fields["voicemail"] = fill(table["page_voicemail"], {"text": transcript}) if transcript else ""
    if message.channel == "chat":
        fields["who"] = f"level {message.level}"
        return Text("", fill(table["chat_page"], fields))
    return Text(fill(table["page_email_subject"], fields), fill(table["page_email_body"], fields))


def listed(numbers: list[str]) -> str:
    """Return ticket numbers for an SMS: the first `SMS_LISTED`, then how many more."""
    shown = ", ".join(numbers[:SMS_LISTED])
    return shown + (f" (+{len(numbers) - SMS_LISTED})" if len(numbers) > SMS_LISTED else "")


def _listing(settings: Settings, message: OutboxMessage, table: dict[str, str]) -> Text:
    """Return an opening summary or a digest of unverified calls: tickets in a list."""
    numbers = (message.detail or "").split()
    fields = {"count": str(len(numbers)), "tickets": listed(numbers), "link": _link(settings)}
    if message.channel == "email":
        fields["tickets"] = "\n".join(f"{number}: {_link(settings, number)}" for number in numbers)
        return Text(
            fill(table[f"{message.kind}_email_subject"], fields),
            fill(table[f"{message.kind}_email_body"], fields),
        )
    return Text("", fill(table[f"{message.kind}_sms"], fields))


def render(settings: Settings, session: Session, message: OutboxMessage) -> Text:
    """Return the text of a queued message about a ticket (`incident_texts` writes the others)."""
    table = settings.messages.get(message.language) or settings.messages[settings.default_language]
    if message.kind == paging.PAGE:
        return _page(settings, message, table)
    if message.kind in paging.LISTING_KINDS:
        return _listing(settings, message, table)
    if message.kind == paging.TEST_PAGE:
        fields = {"name": message.recipient_name or "", "link": _link(settings)}
        if message.channel == "email":
            subject = fill(table["test_page_email_subject"], fields)
            return Text(subject, fill(table["test_page_email_body"], fields))
        return Text("", fill(table["test_page_sms"], fields))
    fields = ticket_fields(settings, message.ticket, message.language)
    if message.kind == paging.ACK_NOTICE:
        fields["name"] = message.detail or "?"
        subject = fill(table["ack_notice_subject"], fields)
        return Text(subject, fill(table["ack_notice"], fields))
    key = {
        paging.CALLER_TICKET: "caller_ticket",
        paging.CALLER_ACK: "caller_ack",
        paging.CALLER_RESOLVED: "caller_resolved",
    }[message.kind]
    return Text("", fill(table[key], fields))
