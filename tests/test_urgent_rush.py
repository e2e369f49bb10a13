"""Many people of one organisation calling the emergency line at once make one urgent ticket."""

import threading

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from tickets.models import Contact, Organization, Ticket, TicketCall
from tickets.urgent import opening

CALLERS = 50


def make_people(session, count: int) -> list[int]:
    organization = Organization(name="Acme Uitzendbureau")
    session.add(organization)
    session.flush()
    people = [
        Contact(
            organization_id=organization.id,
            name=f"Super user {n}",
            email=f"super{n}@acme.example",
            role="super_user",
        )
        for n in range(count)
    ]
    session.add_all(people)
    session.commit()
    return [person.id for person in people]


@pytest.fixture
def own_connections(database_url):
    """Return an engine giving every thread its own connection, as separate servers would."""
    connect_args = {"timeout": 60} if database_url.startswith("sqlite") else {}
    engine = create_engine(database_url, poolclass=NullPool, connect_args=connect_args)
    yield engine
    engine.dispose()


def call_at_once(engine, contact_ids: list[int], clock) -> list[BaseException]:
    """Open the urgent ticket of every call in its own thread and session, all released at once."""
    start = threading.Barrier(len(contact_ids), timeout=60)
    errors: list[BaseException] = []

    def call(n: int, contact_id: int) -> None:
        with Session(engine, expire_on_commit=False) as session:
            try:
                start.wait()
                contact = session.get(Contact, contact_id)
                opening.open_ticket(
                    session,
                    arrival=opening.recognised(contact, "caller_id"),
                    call_sid=f"CA{n:032d}",
                    line="emergency",
                    caller=None,
                    contact=contact,
                    in_hours=True,
                    repeat_window_minutes=30,
                    at=clock.now,
                )
                session.commit()  # as the webhook does, at once
            except Exception as exc:  # reported by the test
                errors.append(exc)

    threads = [
        threading.Thread(target=call, args=(n, contact_id))
        for n, contact_id in enumerate(contact_ids)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_fifty_simultaneous_callers_of_one_organisation_make_one_ticket(
    session, clock, own_connections
):
    contact_ids = make_people(session, CALLERS)
    errors = call_at_once(own_connections, contact_ids, clock)
    assert errors == []
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Ticket)) == 1
    assert session.scalar(select(func.count()).select_from(TicketCall)) == CALLERS
    ticket = session.scalar(select(Ticket))
    assert len(ticket.calls) == CALLERS
