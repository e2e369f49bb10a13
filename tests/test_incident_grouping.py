"""Outage reports of several organisations become one major incident, once, across instances.

The reports come in as signed webhooks; the races run in threads with a session each, as
separate server instances would, on SQLite and (with IVR_TEST_DATABASE_URL) PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from incident_helpers import all_incidents, make_organisations, outage_call, report, super_phone
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from tickets.incidents import current_incident, note_outage_report, spoken_text
from tickets.incidents.grouping import open_incident
from tickets.incidents.models import JOINED, OPENED, UPDATE, IncidentUpdate
from tickets.models import Contact, Ticket


@pytest.fixture
def organisations(session, clock):
    return make_organisations(session, 6)


def tickets_of(session, incident) -> list[Ticket]:
    return list(
        session.scalars(select(Ticket).where(Ticket.incident_id == incident.id).order_by(Ticket.id))
    )


def test_outage_reports_of_three_organisations_become_one_incident(
    app, phone, session, clock, organisations
):
    for n in (1, 2):
        outage_call(phone, super_phone(n))
        clock.now += timedelta(minutes=1)
        assert all_incidents(session) == []
    outage_call(phone, super_phone(3))
    [incident] = all_incidents(session)
    assert incident.status == "open" and incident.opened_by == "automatic"
    tickets = tickets_of(session, incident)
    assert [ticket.organization.name for ticket in tickets] == ["Klant 01", "Klant 02", "Klant 03"]
    kinds = [update.kind for update in incident.updates]
    assert kinds == [OPENED, JOINED, JOINED, JOINED]
    for ticket in tickets:
        said = [event.detail for event in ticket.events if event.kind == "incident_joined"]
        assert said == [f"part of incident {incident.number}"]


def test_a_later_outage_report_joins_the_open_incident(app, phone, session, clock, organisations):
    for n in (1, 2, 3, 4):
        outage_call(phone, super_phone(n))
    [incident] = all_incidents(session)
    assert len(tickets_of(session, incident)) == 4
    # A second call of an organisation already in it joins its ticket, and so the incident.
    outage_call(phone, super_phone(2))
    assert len(tickets_of(session, incident)) == 4
    assert len(all_incidents(session)) == 1


def test_an_urgent_bug_is_not_held_in_the_incident(app, phone, session, clock, organisations):
    for n in (1, 2, 3):
        outage_call(phone, super_phone(n))
    outage_call(phone, super_phone(4), key="2")
    [incident] = all_incidents(session)
    bug = session.scalar(select(Ticket).where(Ticket.reason == "urgent_bug"))
    assert bug.incident_id is None and len(tickets_of(session, incident)) == 3


def test_reports_outside_the_window_do_not_count(app, phone, session, clock, organisations):
    outage_call(phone, super_phone(1))
    clock.now += timedelta(minutes=11)  # incidents.window_minutes is 10
    outage_call(phone, super_phone(2))
    outage_call(phone, super_phone(3))
    assert all_incidents(session) == []
    outage_call(phone, super_phone(4))
    [incident] = all_incidents(session)
    assert [t.organization.name for t in tickets_of(session, incident)] == [
        "Klant 02",
        "Klant 03",
        "Klant 04",
    ]


def test_many_calls_of_one_organisation_count_as_one(app, phone, session, clock, organisations):
    for _ in range(3):
        outage_call(phone, super_phone(1))
    outage_call(phone, super_phone(2))
    assert all_incidents(session) == []


@pytest.mark.parametrize("settings_overrides", [{"incidents.threshold": 2}])
def test_the_threshold_is_a_setting(app, phone, session, clock, organisations):
    outage_call(phone, super_phone(1))
    outage_call(phone, super_phone(2))
    assert len(all_incidents(session)) == 1


def test_a_ticket_of_no_organisation_joins_no_incident(app, session, clock, organisations):
    for n, person in enumerate(organisations[:3]):
        report(session, person, sid=f"CA{n:032d}", now=clock.now)
    session.commit()
    stranger = Ticket(priority="urgent", reason="outage", verified=False, caller="+31699999999")
    session.add(stranger)
    session.flush()
    assert note_outage_report(session, ticket=stranger, now=clock.now) is None
    assert stranger.incident_id is None


def test_what_a_new_caller_hears_is_the_newest_update_else_the_summary(app, session, clock):
    incident = open_incident(session, summary="Inloggen lukt niet", opened_by="x", now=clock.now)
    assert spoken_text(incident) == "Inloggen lukt niet"
    for n, text in enumerate(("Oorzaak gevonden", "Herstel loopt")):
        at = clock.now + timedelta(minutes=n + 1)
        session.add(IncidentUpdate(incident_id=incident.id, kind=UPDATE, text=text, at=at))
    session.flush()
    assert spoken_text(incident) == "Herstel loopt"
    assert current_incident(session) is incident


def test_opening_by_hand_while_one_is_open_opens_none(app, session, clock):
    first = open_incident(session, summary="Storing", opened_by="a", now=clock.now)
    assert open_incident(session, summary="Nog een", opened_by="b", now=clock.now) is None
    session.commit()
    assert all_incidents(session) == [first]


# ------------------------------------------------------------------ two instances at once


@pytest.fixture
def own_connections(database_url):
    """Return an engine giving every thread its own connection, as separate servers would."""
    connect_args = {"timeout": 60} if database_url.startswith("sqlite") else {}
    engine = create_engine(database_url, poolclass=NullPool, connect_args=connect_args)
    yield engine
    engine.dispose()


def test_two_instances_reaching_the_threshold_at_once_open_one_incident(
    app, session, clock, organisations, own_connections
):
    for n, person in enumerate(organisations[:2]):
        report(session, person, sid=f"CA{n:032d}", now=clock.now)
    session.commit()
    callers = [person.id for person in organisations[2:]]
    start = threading.Barrier(len(callers), timeout=60)
    errors: list[BaseException] = []

    def call(n: int, contact_id: int) -> None:
        with Session(own_connections, expire_on_commit=False) as own:
            try:
                person = own.get(Contact, contact_id)
                start.wait()
                ticket = report(own, person, sid=f"CB{n:032d}", now=clock.now)
                note_outage_report(own, ticket=ticket, now=clock.now)
                own.commit()
            except Exception as exc:  # reported by the test
                errors.append(exc)

    threads = [threading.Thread(target=call, args=item) for item in enumerate(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    [incident] = all_incidents(session)
    assert len(tickets_of(session, incident)) == 6


@pytest.mark.wall_clock  # it sleeps: under libfaketime time.sleep fails (see .ci/run)
def test_two_openings_at_once_end_with_one_incident(app, session, clock, own_connections):
    first = Session(own_connections)
    second = Session(own_connections)
    won = open_incident(first, summary="Eerste", opened_by="a", now=clock.now)
    assert won is not None
    outcome: dict = {}

    def open_second() -> None:
        try:
            outcome["lost"] = open_incident(second, summary="Tweede", opened_by="b", now=clock.now)
            outcome["open"] = current_incident(second).summary
            second.commit()
        except Exception as exc:  # reported by the test
            outcome["error"] = exc

    thread = threading.Thread(target=open_second)
    thread.start()
    time.sleep(0.5)  # the second waits for the first to decide
    assert thread.is_alive()
    first.commit()
    thread.join(timeout=60)
    first.close()
    second.close()
    assert outcome == {"lost": None, "open": "Eerste"}
    assert [incident.summary for incident in all_incidents(session)] == ["Eerste"]


def test_after_resolution_only_new_reports_open_the_next_incident(
    app, phone, session, clock, organisations
):
    for n in (1, 2, 3):
        outage_call(phone, super_phone(n))
    [first] = all_incidents(session)
    first.status, first.open_slot, first.resolved_at = "resolved", None, clock.now
    session.commit()
    outage_call(phone, super_phone(4))
    outage_call(phone, super_phone(5))
    assert len(all_incidents(session)) == 1  # the resolved incident's reports count no more
    outage_call(phone, super_phone(6))
    [_, second] = all_incidents(session)
    names = [ticket.organization.name for ticket in tickets_of(session, second)]
    assert names == ["Klant 04", "Klant 05", "Klant 06"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("incidents.threshold", 1),
        ("incidents.window_minutes", 0),
        ("incidents.digest_minutes", "x"),
    ],
)
def test_a_bad_incident_setting_stops_start_up_naming_its_key(database_url, tmp_path, key, value):
    from helpers import build_settings

    from core.settings import ConfigError

    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_settings(database_url, tmp_path, **{key: value})


def test_a_ticket_of_a_resolved_incident_is_in_no_open_one(
    app, phone, session, clock, organisations
):
    for n in (1, 2, 3):
        outage_call(phone, super_phone(n))
    [incident] = all_incidents(session)
    incident.status, incident.open_slot = "resolved", None
    session.commit()
    ticket = session.scalar(select(Ticket).order_by(Ticket.id))
    assert note_outage_report(session, ticket=ticket, now=clock.now) is None
