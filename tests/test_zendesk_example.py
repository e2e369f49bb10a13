"""The worked example (`examples/zendesk_receiver.py`) against a local stand-in of Zendesk's
Tickets API: the service delivers to the example receiver over HTTP, the receiver verifies each
event with `standardwebhooks` and files it in "Zendesk", one Zendesk ticket per ticket of ours."""

from __future__ import annotations

import base64
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from helpdesk_receiver import new_secret
from helpers import EMERGENCY_NUMBER
from sqlalchemy import select
from werkzeug.serving import make_server

from examples.zendesk_receiver import create_app as create_receiver
from ivr.messaging.helpdesk import tick
from tickets import lifecycle
from tickets.helpdesk.models import HelpdeskDelivery
from tickets.models import Contact, ContactPhone, Organization, StaffUser, Ticket

pytestmark = pytest.mark.wall_clock

SECRET = new_secret()
CALLER = "+31611110000"
AUTH = "Basic " + base64.b64encode(b"agent@otys.example/token:zd-token").decode()


class ZendeskStandIn:
    """Zendesk's ticket endpoints: list by external_id, create, update (with basic auth)."""

    def __init__(self) -> None:
        self.tickets: dict[int, dict] = {}
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, document: dict) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") != AUTH:
                    self._send(401, {"error": "Couldn't authenticate you"})
                    return False
                return True

            def _body(self) -> dict:
                return json.loads(self.rfile.read(int(self.headers["Content-Length"])))["ticket"]

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if not self._authorised() or parts.path != "/api/v2/tickets.json":
                    return
                wanted = parse_qs(parts.query).get("external_id", [None])[0]
                found = [t for t in stand_in.tickets.values() if t["external_id"] == wanted]
                self._send(200, {"tickets": found, "count": len(found)})

            def do_POST(self) -> None:
                if not self._authorised():
                    return
                ticket = self._body()
                ticket_id = len(stand_in.tickets) + 1
                comment = ticket.pop("comment")
                stand_in.tickets[ticket_id] = {"id": ticket_id, **ticket, "comments": [comment]}
                self._send(201, {"ticket": stand_in.tickets[ticket_id]})

            def do_PUT(self) -> None:
                if not self._authorised():
                    return
                ticket_id = int(self.path.rsplit("/", 1)[1].removesuffix(".json"))
                changes = self._body()
                ticket = stand_in.tickets[ticket_id]
                ticket["comments"].append(changes.pop("comment"))
                ticket.update(changes)
                self._send(200, {"ticket": ticket})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self) -> ZendeskStandIn:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Served:
    """A WSGI app served on loopback by werkzeug, in a thread."""

    def __init__(self, wsgi) -> None:
        self.server = make_server("127.0.0.1", 0, wsgi, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/otys-events"

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def zendesk():
    stand_in = ZendeskStandIn().start()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def receiver(zendesk, tmp_path):
    app = create_receiver(
        secret=SECRET,
        zendesk_url=zendesk.url,
        email="agent@otys.example",
        token="zd-token",
        database=str(tmp_path / "seen.sqlite3"),
    )
    served = Served(app)
    yield served
    served.stop()


@pytest.fixture
def settings_overrides(receiver):
    hook = {"name": "zendesk", "url": receiver.url, "secret": SECRET}
    return {"helpdesk.webhooks": [{**hook, "allow_private_network": True}]}


def test_a_call_ticket_becomes_one_zendesk_ticket_and_its_events_notes_on_it(
    app, session, clock, phone, zendesk
):
    acme = Organization(name="Acme Uitzendbureau")
    sanne = Contact(organization=acme, name="Sanne Visser", email="s@a.example", role="super_user")
    sanne.phones.append(ContactPhone(number=CALLER))
    bas = StaffUser(email="bas@otys.test", name="Bas de Vries", password_hash="x")
    session.add_all([acme, bas])
    session.commit()
    call = phone(to=EMERGENCY_NUMBER, from_=CALLER)
    call.press(call.start(), "1")
    call.hang_up(duration="30")
    ticket = session.scalars(select(Ticket)).one()
    number = ticket.number
    with app.app_context():
        lifecycle.acknowledge_ticket(session, ticket=ticket, staff=bas, via="dashboard")
    tick(app)

    (filed,) = zendesk.tickets.values()
    assert filed["external_id"] == number
    assert (filed["priority"], filed["status"]) == ("urgent", "open")
    assert filed["subject"] == f"OTYS {number}: Acme Uitzendbureau"
    notes = [comment["body"] for comment in filed["comments"]]
    assert notes[0].startswith("Emergency call from Sanne Visser (Acme Uitzendbureau), opened")
    assert notes[1].startswith("Call ended: abandoned_while_ringing, 30 s, major outage.")
    assert notes[2].startswith("Bas de Vries: acknowledged by Bas de Vries (dashboard)")
    assert all(comment["public"] is False for comment in filed["comments"])

    # Support redelivers the first event: the receiver knows its webhook-id; nothing is added.
    session.expire_all()
    first = session.scalars(select(HelpdeskDelivery).order_by(HelpdeskDelivery.id)).first()
    first.status, first.next_attempt_at = "pending", clock.now
    session.commit()
    clock.now += timedelta(seconds=1)
    tick(app)
    assert len(zendesk.tickets) == 1 and len(filed["comments"]) == 3
