"""Write out a message about a major incident: its page, notices, digest and callers' updates."""

from __future__ import annotations

from flask import current_app
from sqlalchemy.orm import Session

from core.settings import Settings
from ivr.messaging.texts import Text, listed, render
from ivr.prompts import fill
from tickets import caller_texts, paging
from tickets.incidents import Incident, spoken_text
from tickets.incidents.documents import members
from tickets.incidents.pages import INCIDENT_DIGEST
from tickets.models import OutboxMessage, Ticket


def incident_link(settings: Settings, number: int) -> str:
    """Return the dashboard's address of an incident, outside any request."""
    base = settings.public_url or f"http://{settings.server.host}:{settings.server.port}"
    return base + current_app.url_map.bind("localhost").build(
        "dashboard.incident", {"number": number}
    )


def incident_fields(settings: Settings, session: Session, incident: Incident) -> dict[str, str]:
    """Return the placeholders every text about an incident may use."""
    names = list(dict.fromkeys(name for _, name in members(session, incident) if name))
    return {
        "incident": str(incident.number),
        "count": str(len(names)),
        "total": str(len(names)),
        "organizations": listed(names),
        "since": incident.opened_at.astimezone(settings.zone).strftime("%H:%M"),
        "link": incident_link(settings, incident.number),
    }


def _page(message: OutboxMessage, table: dict, fields: dict, summary: str) -> Text:
    fields["summary"] = fill(table["incident_summary"], {"text": summary}) if summary else ""
    if message.channel == "sms":
        return Text("", fill(table["incident_page_sms"], fields))
    if message.channel == "chat":
        fields["who"] = f"level {message.level}"
        return Text("", fill(table["incident_chat_page"], fields))
    fields["summary"] = fields["summary"].strip()
    return Text(
        fill(table["incident_page_email_subject"], fields),
        fill(table["incident_page_email_body"], fields),
    )


def _digest(message: OutboxMessage, table: dict, fields: dict) -> Text:
    names = (message.detail or "").splitlines()
    fields["count"] = str(len(names))
    if message.channel == "email":
        fields["organizations"] = "\n".join(names)
        return Text(
            fill(table["incident_digest_email_subject"], fields),
            fill(table["incident_digest_email_body"], fields),
        )
    fields["organizations"] = listed(names)
    return Text("", fill(table["incident_digest_sms"], fields))


def _to_caller(message: OutboxMessage, table: dict, fields: dict, ticket: Ticket | None) -> Text:
    fields["text"] = message.detail or ""
    fields["number"] = ticket.number if ticket is not None else ""
    key = "caller_incident"
    if message.kind == caller_texts.CALLER_INCIDENT_END:
        resolved = ticket is not None and ticket.status in ("resolved", "closed")
        key = "caller_incident_resolved" if resolved else "caller_incident_resolved_open"
    return Text("", " ".join(fill(table[key], fields).split()))


def render_incident(
    settings: Settings, session: Session, message: OutboxMessage, table: dict[str, str]
) -> Text:
    """Return the text of a queued message about an incident."""
    incident = session.get(Incident, message.incident_id)
    fields = incident_fields(settings, session, incident)
    if message.kind == paging.PAGE:
        return _page(message, table, fields, spoken_text(incident))
    if message.kind == paging.ACK_NOTICE:
        fields["name"] = message.detail or "?"
        subject = fill(table["incident_ack_notice_subject"], fields)
        return Text(subject, fill(table["incident_ack_notice"], fields))
    if message.kind == INCIDENT_DIGEST:
        return _digest(message, table, fields)
    return _to_caller(message, table, fields, message.ticket)


def render_message(settings: Settings, session: Session, message: OutboxMessage) -> Text:
    """Return the text of any queued message: about an incident, or about a ticket."""
    table = settings.messages.get(message.language) or settings.messages[settings.default_language]
    if message.incident_id is not None:
        return render_incident(settings, session, message, table)
    return render(settings, session, message)
