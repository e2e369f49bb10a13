"""Screenshots of the dashboard on a phone and a desktop, with realistic data, for the README.

    python -m bench.screenshots [--out docs/images] [--all]

Builds a throw-away service (SQLite in a temporary directory), fills it with what a support
desk has after a bad week (`seed`: long organisation and people's names, a ticket whose
outage call joined an urgent bug, a Dutch voicemail with its transcript and a long recording
address, sixty tickets, a rota with a shift nobody can be reached on), serves it on the
loopback interface and photographs it in Debian's Chromium at 390 x 844 and 1280 x 900.
Without `--all` only the ticket page (the README's pictures); with it every page.

`seed` is also what tests/test_phone_screen.py fills its dashboard with.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from flask import Flask
from sqlalchemy import select
from werkzeug.serving import make_server

from core.clock import utcnow
from core.db import db
from tickets.availability import set_hours_override
from tickets.models import (
    Announcement,
    CallbackRequest,
    Contact,
    ContactPhone,
    OnCallShift,
    Organization,
    OutboxMessage,
    StaffUser,
    Ticket,
    TicketCall,
)

CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
PASSWORD = "screenshots-" + "x" * 12
ADMIN = "alexandra.vanderberg-huisman@otys.example"
ENGINEER = "maximiliaan.vanoosterhout@otys.example"
SAID_FIRST = "Bij het opslaan van een vacature krijgen we een foutmelding, al sinds vanochtend."
SAID = (
    "Goedemorgen, met Wilhelmina van Heemskerck-Düring van Uitzendorganisatie Noord. Niemand "
    "van ons kan nog inloggen in de omgeving, alle vestigingen staan stil. Bel mij terug op "
    "mijn mobiel alstublieft."
)
LONG_RECORDING = (
    "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Recordings/"
    "RE0123456789abcdef0123456789abcdef.mp3?RequestedBy=noodlijn-otys-support-desk-production"
    "&Download=true&ContentDisposition=attachment%3B%20filename%3Dvoicemail-noodlijn.mp3"
)
ORGANISATIONS = (
    "Uitzendorganisatie Noord-Holland Flexibele Arbeidsbemiddeling B.V.",
    "Stichting Detacheringsbureau Zorg en Welzijn Zuid-Oost Brabant",
    "Acme Recruitment",
    "Werving & Selectie Randstad-Noord Internationale Professionals",
    "De Vries Personeelsdiensten",
)


@dataclass(frozen=True)
class Showcase:
    """What `seed` made that a picture or a test wants to find."""

    ticket: str  # the number of the ticket with the Dutch voicemail
    admin: str
    engineer: str
    engineer_id: int
    password: str


def _staff(session, email: str, name: str, role: str, phone: str | None) -> StaffUser:
    from tickets.staff import create_staff

    return create_staff(
        session, email=email, name=name, password=PASSWORD, role=role, phone=phone, actor="seed"
    )


def _directory(session) -> list[Organization]:
    organisations = [Organization(name=name) for name in ORGANISATIONS]
    people = (
        ("Wilhelmina van Heemskerck-Düring", "super_user", "+31611110001"),
        ("Jan-Willem Oosterbroek", "key_user", "+31611110002"),
    )
    for index, (name, role, phone) in enumerate(people):
        contact = Contact(
            organization=organisations[0],
            name=name,
            email=f"contact{index}@noord-holland-flex.example",
            role=role,
        )
        contact.phones.append(ContactPhone(number=phone))
    session.add_all(organisations)
    session.commit()
    return organisations


def _rota(session, engineer: StaffUser, phoneless: StaffUser, now) -> None:
    from tickets.rota import add_override

    add_override(
        session,
        level=1,
        staff=engineer,
        starts_at=now - timedelta(hours=2),
        ends_at=now + timedelta(days=3),
        added_by="seed",
    )
    # A calendar shift of someone whose phone number is missing: the On call page warns.
    session.add(
        OnCallShift(
            level=2,
            staff_id=phoneless.id,
            starts_at=now + timedelta(days=1),
            ends_at=now + timedelta(days=4),
            source="calendar",
        )
    )
    session.commit()


def _call(app: Flask, caller: str, keys: list[str]) -> None:
    """Place an emergency call through the app as Twilio would, with the terminal telephone."""
    from ivr.phone.answers import Answers
    from ivr.phone.telephone import Telephone
    from ivr.phone.transport import ClientTransport

    settings = app.config["SETTINGS"]
    telephone = Telephone(
        transport=ClientTransport(app.test_client()),
        auth_token=settings.twilio_auth_token.get_secret_value(),
        base_url="http://localhost",
        public_url=settings.public_url,
        answers=Answers(keys),
        echo=lambda line: None,
    )
    telephone.call(to=settings.emergency.numbers[0], from_=caller)


def _many_tickets(session, organisations: list[Organization], now) -> None:
    statuses = ("new", "in_progress", "waiting_for_customer", "planned", "resolved", "closed")
    for index in range(60):
        organisation = organisations[index % len(organisations)]
        created = now - timedelta(hours=3 + index * 5)
        ticket = Ticket(
            priority="urgent" if index % 3 == 0 else "normal",
            category=("bug", "question", "other")[index % 3],
            status=statuses[index % len(statuses)],
            reason=("outage", "urgent_bug", None)[index % 3],
            caller=f"+3161111{index:04d}",
            organization_id=organisation.id,
            in_hours=index % 4 != 0,
            verified=index % 7 != 0,
            rating=4 if index % len(statuses) == 5 else None,
            created_at=created,
            updated_at=created,
        )
        session.add(ticket)
        session.flush()
        session.add(
            TicketCall(
                ticket_id=ticket.id,
                sid=f"CA{index:032x}",
                line="emergency",
                caller=ticket.caller,
                reason=ticket.reason,
                outcome=("answered", "voicemail", "refused", "closed_no_message")[index % 4],
                started_at=created,
                ended_at=created + timedelta(minutes=3),
                duration=180,
            )
        )
    session.commit()


def _office_and_outbox(session, showcase_ticket: Ticket, engineer: StaffUser, now) -> None:
    session.add_all(
        [
            CallbackRequest(
                call_sid=f"CA{index + 900:032x}",
                caller=f"+3120555{index:04d}",
                department=("finance", "sales", "reception")[index % 3],
                created_at=now - timedelta(hours=index),
                recording_url=LONG_RECORDING,
                recording_duration=37 + index,
                in_hours=index % 2 == 0,
            )
            for index in range(4)
        ]
    )
    session.add(
        Announcement(
            text_nl="Er is een storing in de koppeling met de vacaturesites; wij werken eraan.",
            text_en="The job-board connection is down; we are working on it.",
            created_at=now - timedelta(hours=1),
        )
    )
    session.add(
        OutboxMessage(
            ticket_id=showcase_ticket.id,
            staff_id=engineer.id,
            kind="page",
            channel="email",
            recipient=engineer.email,
            recipient_name=engineer.name,
            idempotency_key=secrets.token_hex(16),
            status="failed",
            attempts=8,
            level=1,
            round=1,
            last_error=f"mail server 550: mailbox {ENGINEER} unavailable",
            created_at=now - timedelta(minutes=20),
        )
    )
    session.commit()


def seed(app: Flask) -> Showcase:
    """Fill an empty service with a realistic week; return what the pictures look for."""
    with app.app_context():
        session = db.session
        now = utcnow()
        _staff(session, ADMIN, "Alexandra van der Berg-Huisman", "admin", "+31620000010")
        engineer = _staff(
            session, ENGINEER, "Maximiliaan van Oosterhout-de Wit", "agent", "+31620000011"
        )
        phoneless = _staff(session, "bas@otys.example", "Bas de Vries", "agent", None)
        organisations = _directory(session)
        _rota(session, engineer, phoneless, now)
        _many_tickets(session, organisations, now)
        # An urgent bug that nobody took, then the same organisation calls with an outage
        # (the line forced open, whatever the hour the pictures are taken).
        set_hours_override(session, mode="open", set_by="seed")
        silent = ["-"] * app.config["SETTINGS"].oncall.rounds  # every round rings, unanswered
        _call(app, "+31611110002", ["2", *silent, f"rec:{SAID_FIRST}"])
        _call(app, "+31611110001", ["1", *silent, f"rec:{SAID}"])
        set_hours_override(session, mode="auto", set_by="seed")
        session.expire_all()
        ticket = session.scalars(
            select(Ticket)
            .where(Ticket.organization_id == organisations[0].id, Ticket.source == "phone")
            .order_by(Ticket.id.desc())
            .limit(1)
        ).one()
        ticket.calls[0].recording_url = LONG_RECORDING
        session.commit()
        _office_and_outbox(session, ticket, engineer, now)
        return Showcase(ticket.number, ADMIN, ENGINEER, engineer.id, PASSWORD)


def serve(app: Flask):
    """Serve `app` on a free loopback port in a thread; return (base URL, server)."""
    app.config["SESSION_COOKIE_SECURE"] = False
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_port}", httpd


def sign_in(page, email: str, password: str) -> None:
    """Sign in on the dashboard's sign-in page."""
    page.goto("/support/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/support")


def dashboard_pages(showcase: Showcase) -> dict[str, str]:
    """Return every dashboard page worth a picture: name -> path."""
    return {
        "tickets": "/support",
        "ticket": f"/support/tickets/{showcase.ticket}",
        "callbacks": "/support/callbacks",
        "messages": "/support/messages",
        "oncall": "/support/oncall",
        "statistics": "/support/statistics",
        "settings": "/support/settings",
        "staff": "/support/staff",
        "staff-account": f"/support/staff/{showcase.engineer_id}",
    }


def build_app(directory: Path) -> Flask:
    """Return a service on a fresh SQLite database in `directory`, with throw-away secrets."""
    from app import create_app
    from app.schema import upgrade_database
    from core.settings import load_settings

    url = f"sqlite:///{directory / 'screens.sqlite3'}"
    upgrade_database(url)
    environ = {
        "IVR_DATABASE_URL": url,
        "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
        "IVR_SECRET_KEY": secrets.token_hex(32),
        "IVR_PUBLIC_URL": "https://ivr.example.com",
        # Paging and recordings as in production, so the pictures show no warning banner.
        "TWILIO_ACCOUNT_SID": "AC" + "0123456789abcdef" * 2,
        "IVR_SMS_FROM": "+31612340000",
        "IVR_SMTP_URL": "smtp://127.0.0.1:9",
    }
    settings = load_settings(environ=environ, overrides={"data_dir": str(directory)})
    return create_app(settings)


def shoot(out: Path, *, everything: bool) -> list[Path]:
    """Take the pictures; return the files written."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="ivr-screens-") as folder:
        app = build_app(Path(folder))
        showcase = seed(app)
        base, httpd = serve(app)
        pages = dashboard_pages(showcase)
        if not everything:
            pages = {"ticket": pages["ticket"]}
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
                )
                for label, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
                    context = browser.new_context(base_url=base, viewport=viewport)
                    page = context.new_page()
                    sign_in(page, showcase.admin, showcase.password)
                    for name, path in pages.items():
                        page.goto(path)
                        page.wait_for_load_state("networkidle")
                        target = out / f"{name}-{label}.png"
                        page.screenshot(path=str(target), full_page=everything)
                        written.append(target)
                    context.close()
                browser.close()
        finally:
            httpd.shutdown()
    return written


def main() -> None:
    """Take the README's screenshots (or, with --all, every page's)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--all", action="store_true", help="every dashboard page, full length")
    options = parser.parse_args()
    for path in shoot(options.out, everything=options.all):
        print(path)


if __name__ == "__main__":
    main()
