"""Helpers for the failure and hostile-input tests: a database that goes away, safe TwiML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from helpers import SECRET_KEY
from sqlalchemy import delete, event

from core.db import Base, db
from tickets.directory import hash_pin
from tickets.models import Contact, ContactPhone, Organization

SUPER_PHONE = "+31612345678"
SUPER_PIN = "4815162"
USER_PHONE = "+31611111111"
USER_PIN = "90210333"

# TwiML attributes that make Twilio request a URL.
URL_ATTRIBUTES = ("action", "url", "recordingStatusCallback", "statusCallback")


class DatabaseOutage:
    """Make the app's database refuse every new connection, counting the attempts.

    Both of the app's engines (the webhooks' and support's) lose it, as they would for real.
    """

    def __init__(self, engine=None):
        self.engines = [engine] if engine is not None else db.engines()
        self.attempts = 0
        self.active = False

    def refuse(self, *_args):
        self.attempts += 1
        dbapi = self.engines[0].dialect.loaded_dbapi
        raise dbapi.OperationalError("connection refused (simulated)")

    def start(self) -> DatabaseOutage:
        db.dispose()
        for engine in self.engines:
            engine.dispose()
            event.listen(engine, "do_connect", self.refuse)
        self.active = True
        return self

    def end(self) -> None:
        if self.active:
            for engine in self.engines:
                event.remove(engine, "do_connect", self.refuse)
                engine.dispose()
            self.active = False


def configured_numbers(settings) -> set[str]:
    """Return every number the configuration allows us to dial."""
    office = settings.office
    numbers = set(office.reception)
    for department in office.departments.values():
        numbers.update(department.numbers)
    numbers.update(colleague.number for colleague in office.colleagues)
    numbers.update(engineer.number for engineer in settings.emergency.engineers)
    return numbers


def assert_safe_twiml(root: ET.Element, settings) -> None:
    """Assert the TwiML dials only configured numbers and only sends Twilio to our own paths."""
    allowed = configured_numbers(settings)
    for dial in root.iter("Dial"):
        assert not (dial.text or "").strip(), f"bare number dialled: {dial.text!r}"
        for target in dial:
            assert target.tag == "Number", f"<{target.tag}> dialled"
            assert (target.text or "").strip() in allowed, f"dialled {target.text!r}"
    for element in root.iter():
        for attribute in URL_ATTRIBUTES:
            value = element.get(attribute)
            if value is not None:
                assert value.startswith("/voice/"), f"{element.tag} {attribute}={value!r}"
    for redirect in root.iter("Redirect"):
        assert (redirect.text or "").strip().startswith("/voice/"), redirect.text


def start_afresh(app, session) -> dict[str, Contact]:
    """Empty the database, forget any outage and create the directory again.

    Property tests whose next step depends on the previous answer need this per example:
    PIN lock-outs or tickets left by an earlier example would change where a call goes.
    """
    session.rollback()
    with db.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(delete(table))
    session.expire_all()
    app.extensions["outage"].health.mark_up()
    return make_directory(session)


def make_directory(session) -> dict[str, Contact]:
    """Create an organisation with a super user (phone and PIN) and a normal user."""
    acme = Organization(name="Acme Uitzendbureau")
    people = {
        "super": Contact(
            organization=acme,
            name="Sanne Visser",
            email="sanne@acme.example",
            role="super_user",
            pin_hash=hash_pin(SUPER_PIN, secret=SECRET_KEY),
        ),
        "user": Contact(
            organization=acme,
            name="Piet Klein",
            email="piet@acme.example",
            role="user",
            pin_hash=hash_pin(USER_PIN, secret=SECRET_KEY),
        ),
    }
    people["super"].phones.append(ContactPhone(number=SUPER_PHONE))
    people["user"].phones.append(ContactPhone(number=USER_PHONE))
    session.add(acme)
    session.commit()
    return people
