"""A receiver of the OTYS support lines' helpdesk events that files them in Zendesk.

Every request is verified with the `standardwebhooks` library (the same check works in any
language: https://www.standardwebhooks.com). Each of our tickets becomes one Zendesk ticket
whose `external_id` is our ticket number: the first event creates it, every later one (and any
repeat) finds it by `external_id` and adds an internal note, so nothing is filed twice. An
event seen before (same `webhook-id`) is answered at once and not filed again.

Run it (Flask and requests come with the service; `pip install standardwebhooks` elsewhere):

    OTYS_WEBHOOK_SECRET=whsec_... \\
    ZENDESK_URL=https://yourcompany.zendesk.com ZENDESK_EMAIL=agent@yourcompany.example \\
    ZENDESK_API_TOKEN=... RECEIVER_DATABASE=var/zendesk-receiver.sqlite3 \\
    flask --app examples.zendesk_receiver run --port 5055

and point the service at it: IVR_HELPDESK_WEBHOOK_URL=https://<this host>/otys-events with
IVR_HELPDESK_WEBHOOK_SECRET set to the same secret.
"""

from __future__ import annotations

import os
import sqlite3
import threading

import requests
from flask import Flask, abort, request
from standardwebhooks import Webhook, WebhookVerificationError

# Our statuses as Zendesk's (Zendesk closes a solved ticket by itself after a while).
STATUSES = {
    "new": "new",
    "in_progress": "open",
    "waiting_for_customer": "pending",
    "with_product_team": "hold",
    "planned": "hold",
    "resolved": "solved",
    "closed": "solved",
}
REASONS = {"outage": "major outage", "urgent_bug": "urgent bug"}


class ZendeskError(Exception):
    """Zendesk did not take a change; the event is answered with 503, so it comes again."""


class Zendesk:
    """The few calls of Zendesk's Tickets API this receiver needs."""

    def __init__(self, url: str, email: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.http = requests.Session()
        self.http.auth = (f"{email}/token", token)

    def _call(self, method: str, path: str, **kwargs) -> dict:
        response = self.http.request(method, f"{self.url}{path}", timeout=10, **kwargs)
        if response.status_code >= 300:
            raise ZendeskError(f"Zendesk answered {response.status_code} to {method} {path}")
        return response.json()

    def find(self, external_id: str) -> dict | None:
        """Return the ticket with this external_id (GET /api/v2/tickets?external_id=...)."""
        found = self._call("GET", "/api/v2/tickets.json", params={"external_id": external_id})
        return found["tickets"][0] if found.get("tickets") else None

    def create(self, ticket: dict) -> dict:
        """Create a ticket (POST /api/v2/tickets)."""
        return self._call("POST", "/api/v2/tickets.json", json={"ticket": ticket})["ticket"]

    def update(self, ticket_id: int, changes: dict) -> dict:
        """Change a ticket or add a comment (PUT /api/v2/tickets/{id})."""
        path = f"/api/v2/tickets/{ticket_id}.json"
        return self._call("PUT", path, json={"ticket": changes})["ticket"]


def ticket_of(event: dict) -> dict | None:
    """Return our ticket an event is about (a call's event carries it), or None."""
    data = event["data"]
    if event["type"].startswith("ticket."):
        return data
    if event["type"] == "call.ended":
        return data["ticket"]
    return None


def note_of(event: dict) -> str:
    """Return the internal note an event adds to the Zendesk ticket."""
    data, kind = event["data"], event["type"]
    if kind == "call.ended":
        reason = REASONS.get(data.get("reason"), "no reason given")
        lines = [f"Call ended: {data['outcome']}, {data.get('duration') or 0} s, {reason}."]
        if data.get("answered_by"):
            lines.append(f"Answered by {data['answered_by']}.")
        if data.get("transcription"):
            lines.append(f"Caller said: {data['transcription']}")
        if data.get("recording_url"):
            lines.append(f"Recording: {data['recording_url']}")
        return "\n".join(lines)
    if kind == "ticket.updated":
        changes = "; ".join(c["detail"] or c["kind"] for c in data.get("changes", []))
        by = (data.get("changed_by") or {}).get("name", "support")
        return f"{by}: {changes}"
    # Opened as soon as the caller is recognised: why they call comes with the call's end.
    who = (data.get("contact") or {}).get("name") or data.get("caller") or "unknown caller"
    organization = data.get("organization") or "organisation unknown"
    return f"Emergency call from {who} ({organization}), opened {data['created_at']}."


def file_event(zendesk: Zendesk, event: dict) -> None:
    """Create our ticket in Zendesk, or add the event to the one there; by external_id."""
    ticket = ticket_of(event)
    if ticket is None:  # an incident: this example files tickets only
        return
    note = {"body": note_of(event), "public": False}
    existing = zendesk.find(ticket["number"])
    if existing is None:
        organization = ticket.get("organization") or "unknown organisation"
        zendesk.create(
            {
                "subject": f"OTYS {ticket['number']}: {organization}",
                "comment": note,
                "priority": "urgent" if ticket["priority"] == "urgent" else "normal",
                "status": STATUSES.get(ticket["status"], "open"),
                "external_id": ticket["number"],
                "tags": ["otys-ivr", ticket.get("reason") or "no-reason"],
            }
        )
        return
    changes = {"comment": note}
    if event["type"] == "ticket.updated":
        changes["status"] = STATUSES.get(ticket["status"], "open")
    zendesk.update(existing["id"], changes)


class SeenEvents:
    """The webhook-ids already filed, in SQLite, so a repeat is recognised after a restart."""

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(path, check_same_thread=False)
        self.connection.execute("CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY)")
        self.lock = threading.Lock()

    def __contains__(self, webhook_id: str) -> bool:
        with self.lock:
            row = self.connection.execute("SELECT 1 FROM seen WHERE id = ?", (webhook_id,))
            return row.fetchone() is not None

    def add(self, webhook_id: str) -> None:
        with self.lock, self.connection:
            self.connection.execute("INSERT OR IGNORE INTO seen VALUES (?)", (webhook_id,))


def create_app(
    *, secret: str, zendesk_url: str, email: str, token: str, database: str = ":memory:"
) -> Flask:
    """Return the receiver: POST /otys-events."""
    app = Flask(__name__)
    verifier = Webhook(secret)
    zendesk = Zendesk(zendesk_url, email, token)
    seen = SeenEvents(database)
    # One event at a time: the service sends a ticket's events in order, one after the other.
    filing = threading.Lock()

    @app.post("/otys-events")
    def receive():
        body = request.get_data()
        try:
            event = verifier.verify(body, dict(request.headers))
        except WebhookVerificationError:
            abort(401)
        webhook_id = request.headers["webhook-id"]
        with filing:
            if webhook_id in seen:
                return "", 204
            try:
                file_event(zendesk, event)
            except (ZendeskError, requests.RequestException):
                return "Zendesk is not taking tickets now", 503  # the service tries again
            seen.add(webhook_id)
        return "", 204

    return app


def app_from_environment() -> Flask:
    """Return the receiver configured by the environment variables above."""
    return create_app(
        secret=os.environ["OTYS_WEBHOOK_SECRET"],
        zendesk_url=os.environ["ZENDESK_URL"],
        email=os.environ["ZENDESK_EMAIL"],
        token=os.environ["ZENDESK_API_TOKEN"],
        database=os.environ.get("RECEIVER_DATABASE", ":memory:"),
    )


if os.environ.get("OTYS_WEBHOOK_SECRET"):  # `flask --app examples.zendesk_receiver run`
    app = app_from_environment()
