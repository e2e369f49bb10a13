import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select
from support_helpers import token_for

from core.db import db
from tickets.api.tickets import BadParameter, parse_ticket_query
from tickets.models import (
    ApiToken,
    Contact,
    ContactPhone,
    Organization,
    StaffUser,
    Ticket,
    TicketCall,
    TicketEvent,
)
from tickets.staff import issue_token

T0 = datetime(2026, 11, 27, 9, 15, 2, tzinfo=UTC)
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


@pytest.fixture
def engineer(session) -> StaffUser:
    # No password: the API only needs a token, and hashing one would slow every test.
    staff = StaffUser(email="eva@otys.example", name="Eva Engineer", password_hash="!")
    session.add(staff)
    session.commit()
    return staff


@pytest.fixture
def auth(session, engineer) -> dict:
    return {"Authorization": f"Bearer {token_for(session, engineer)}"}


@pytest.fixture
def acme(session) -> Organization:
    organization = Organization(name="Acme Uitzendbureau")
    session.add(organization)
    session.commit()
    return organization


def add_ticket(session, *, minutes: float = 0, calls: int = 0, **values) -> Ticket:
    values.setdefault("priority", "urgent")
    values.setdefault("source", "phone")
    values.setdefault("reason", "outage")
    ticket = Ticket(created_at=T0 + timedelta(minutes=minutes), **values)
    session.add(ticket)
    session.flush()
    for index in range(calls):
        session.add(
            TicketCall(
                ticket_id=ticket.id,
                sid=f"CA{ticket.id:08d}{index:04d}",
                line="emergency",
                outcome="answered",
                started_at=ticket.created_at + timedelta(minutes=index),
            )
        )
    session.commit()
    return ticket


def get(client, path: str, headers: dict, **params):
    return client.get(path, query_string=params, headers=headers)


def numbers_of(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [ticket["number"] for ticket in response.get_json()["tickets"]]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic ZXZhOnNlY3JldA==",
        "Bearer",
        "Bearer not-a-token-anyone-was-given",
        "Token {token}",
    ],
)
def test_list_without_a_valid_token_is_401_json(client, session, engineer, header):
    token = issue_token(session, staff=engineer)
    session.commit()
    headers = {"Authorization": header.format(token=token)} if header else {}
    for path in ("/api/tickets", "/api/tickets/100001"):
        response = client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.get_json() == {"error": "a valid bearer token is required"}
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_token_is_refused(clock, client, session, engineer, auth):
    assert client.get("/api/tickets", headers=auth).status_code == 200
    for token in session.scalars(select(ApiToken)):
        token.revoked_at = clock.now
    session.commit()
    assert client.get("/api/tickets", headers=auth).status_code == 401


def test_token_of_a_deactivated_account_is_refused(client, session, engineer, auth):
    engineer.active = False
    session.commit()
    assert client.get("/api/tickets", headers=auth).status_code == 401


def test_list_is_newest_first_with_ties_broken_by_number(client, session, auth):
    old = add_ticket(session, minutes=0)
    newest = add_ticket(session, minutes=30)
    same_a = add_ticket(session, minutes=10)
    same_b = add_ticket(session, minutes=10)
    response = get(client, "/api/tickets", auth)
    assert numbers_of(response) == [newest.number, same_b.number, same_a.number, old.number]
    body = response.get_json()
    assert (body["page"], body["per_page"], body["has_more"]) == (1, 50, False)


def test_filters_narrow_the_list(client, session, auth, acme):
    urgent = add_ticket(session, minutes=1, organization=acme)
    bug = add_ticket(session, minutes=2, reason="urgent_bug", status="in_progress")
    web = add_ticket(session, minutes=3, priority="normal", source="web", reason=None)
    closed = add_ticket(session, minutes=4, status="closed", organization=acme)
    assert numbers_of(get(client, "/api/tickets", auth, priority="urgent")) == [
        closed.number,
        bug.number,
        urgent.number,
    ]
    assert numbers_of(get(client, "/api/tickets", auth, status="in_progress")) == [bug.number]
    assert numbers_of(get(client, "/api/tickets", auth, source="web")) == [web.number]
    assert numbers_of(get(client, "/api/tickets", auth, reason="urgent_bug")) == [bug.number]
    assert numbers_of(get(client, "/api/tickets", auth, organization=acme.id)) == [
        closed.number,
        urgent.number,
    ]
    assert numbers_of(
        get(client, "/api/tickets", auth, organization=acme.id, status="new", priority="urgent")
    ) == [urgent.number]
    assert numbers_of(get(client, "/api/tickets", auth, source="email")) == []


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"priority": "panic"}, "priority"),
        ({"status": ""}, "status"),
        ({"status": "NEW"}, "status"),
        ({"source": "fax"}, "source"),
        ({"reason": "bored"}, "reason"),
        ({"organization": "acme"}, "organization"),
        ({"organization": "0"}, "organization"),
        ({"organization": "99999999999999999999"}, "organization"),
        ({"page": "0"}, "page"),
        ({"page": "-1"}, "page"),
        ({"page": "1.5"}, "page"),
        ({"page": "２"}, "page"),
        ({"page": "99999999999999999999999"}, "page"),
        ({"per_page": "501"}, "per_page"),
        ({"per_page": "0"}, "per_page"),
        ({"per_page": "many"}, "per_page"),
        ({"sort": "created_at"}, "sort"),
        ({"status": ["new", "closed"]}, "status"),
    ],
)
def test_bad_parameters_are_400_json_naming_the_parameter(client, auth, params, named):
    response = get(client, "/api/tickets", auth, **params)
    assert response.status_code == 400
    assert response.is_json
    assert named in response.get_json()["error"]


def test_parse_ticket_query_is_a_plain_function():
    from werkzeug.datastructures import MultiDict

    query = parse_ticket_query(MultiDict({"status": "new", "page": "3", "per_page": "500"}))
    assert (query.filters, query.page, query.per_page) == ({"status": "new"}, 3, 500)
    with pytest.raises(BadParameter, match="per_page"):
        parse_ticket_query(MultiDict({"per_page": "501"}))


def test_pages_with_has_more(client, session, auth):
    tickets = [add_ticket(session, minutes=index) for index in range(5)]
    newest_first = [ticket.number for ticket in reversed(tickets)]
    pages = []
    for page in (1, 2, 3, 4):
        response = get(client, "/api/tickets", auth, page=page, per_page=2)
        body = response.get_json()
        assert (body["page"], body["per_page"]) == (page, 2)
        pages.append((numbers_of(response), body["has_more"]))
    assert pages == [
        (newest_first[0:2], True),
        (newest_first[2:4], True),
        (newest_first[4:5], False),
        ([], False),
    ]
    exact = get(client, "/api/tickets", auth, per_page=5).get_json()
    assert (len(exact["tickets"]), exact["has_more"]) == (5, False)


def test_list_queries_do_not_grow_with_the_page(client, session, auth, acme):
    def statements_for_listing() -> int:
        executed = []

        def count(*_args, **_kwargs):
            executed.append(1)

        for engine in db.engines():  # the API's requests use support's engine
            event.listen(engine, "before_cursor_execute", count)
        try:
            assert client.get("/api/tickets", headers=auth).status_code == 200
        finally:
            for engine in db.engines():
                event.remove(engine, "before_cursor_execute", count)
        assert executed
        return len(executed)

    person = Contact(organization=acme, name="Anna", email="anna@acme.example", role="key_user")
    session.add(person)
    session.commit()
    for index in range(2):
        add_ticket(session, minutes=index, calls=2, organization=acme, contact=person)
    few = statements_for_listing()
    for index in range(2, 20):
        add_ticket(session, minutes=index, calls=2, organization=acme, contact=person)
    assert statements_for_listing() == few


def test_ticket_fields_in_list_and_detail(client, session, auth, engineer, acme):
    anna = Contact(
        organization=acme,
        name="Anna de Vries",
        email="anna@acme.example",
        role="super_user",
        phones=[ContactPhone(number="+31612345678")],
    )
    session.add(anna)
    session.commit()
    ticket = add_ticket(
        session,
        category="bug",
        status="in_progress",
        reason="urgent_bug",
        description="Vacatures worden niet gepubliceerd",
        caller="+31612345678",
        contact=anna,
        organization=acme,
        in_hours=False,
        assigned_to=engineer,
        acknowledged_at=T0 + timedelta(minutes=5),
        acknowledged_by=engineer,
        release_week="2027-W03",
    )
    session.add(
        TicketCall(
            ticket_id=ticket.id,
            sid="CA0123456789abcdef",
            line="emergency",
            caller="+31612345678",
            outcome="voicemail",
            started_at=T0,
            ended_at=T0 + timedelta(seconds=95),
            duration=95,
            answered_by=None,
            recording_url="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
            transcription="Niets werkt meer",
        )
    )
    session.add_all(
        [
            TicketEvent(ticket_id=ticket.id, at=T0, kind="created", detail="by phone"),
            TicketEvent(
                ticket_id=ticket.id,
                at=T0 + timedelta(minutes=5),
                kind="acknowledged",
                staff_id=engineer.id,
            ),
        ]
    )
    session.commit()

    listed = get(client, "/api/tickets", auth).get_json()["tickets"][0]
    detail = get(client, f"/api/tickets/{ticket.number}", auth).get_json()
    assert "events" not in listed
    assert {key: value for key, value in detail.items() if key != "events"} == listed
    assert detail["number"] == ticket.number == str(100000 + ticket.id)
    assert detail["created_at"] == "2026-11-27T09:15:02+00:00"
    assert ISO_WITH_OFFSET.match(detail["created_at"])
    assert ISO_WITH_OFFSET.match(detail["updated_at"])
    expected = {
        "priority": "urgent",
        "category": "bug",
        "status": "in_progress",
        "source": "phone",
        "reason": "urgent_bug",
        "description": "Vacatures worden niet gepubliceerd",
        "caller": "+31612345678",
        "contact": {
            "id": anna.id,
            "name": "Anna de Vries",
            "email": "anna@acme.example",
            "role": "super_user",
        },
        "organization": "Acme Uitzendbureau",
        "organization_id": acme.id,
        "in_hours": False,
        "verified": True,
        "from_journal": False,
        "acknowledged_at": "2026-11-27T09:20:02+00:00",
        "acknowledged_by": {"name": "Eva Engineer", "email": "eva@otys.example"},
        "assigned_to": {"name": "Eva Engineer", "email": "eva@otys.example"},
        "release_week": "2027-W03",
        "rating": None,
    }
    assert {key: detail[key] for key in expected} == expected
    assert detail["calls"] == [
        {
            "sid": "CA0123456789abcdef",
            "line": "emergency",
            "caller": "+31612345678",
            "contact_id": None,
            "reason": None,
            "outcome": "voicemail",
            "started_at": "2026-11-27T09:15:02+00:00",
            "answered_at": None,
            "ended_at": "2026-11-27T09:16:37+00:00",
            "duration": 95,
            "ring_seconds": None,
            "answered_by": None,
            "recording_url": "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
            "recording_duration": None,
            "transcription": "Niets werkt meer",
        }
    ]
    assert detail["events"] == [
        {
            "at": "2026-11-27T09:15:02+00:00",
            "kind": "created",
            "detail": "by phone",
            "call_sid": None,
            "staff": None,
        },
        {
            "at": "2026-11-27T09:20:02+00:00",
            "kind": "acknowledged",
            "detail": None,
            "call_sid": None,
            "staff": {"name": "Eva Engineer", "email": "eva@otys.example"},
        },
    ]


def test_unidentified_caller_has_no_contact_and_odd_caller_ids_are_null(client, session, auth):
    ticket = add_ticket(session, caller="anonymous", verified=False)
    detail = get(client, f"/api/tickets/{ticket.number}", auth).get_json()
    assert (detail["caller"], detail["contact"], detail["organization"]) == (None, None, None)
    assert (detail["verified"], detail["calls"], detail["events"]) == (False, [], [])


@pytest.mark.parametrize(
    "number",
    ["100999", "100000", "99999", "abc", "12", "+100001", "１００００１", "99999999999999999999"],
)
def test_unknown_or_malformed_ticket_number_is_404_json(client, session, auth, number):
    add_ticket(session)
    response = client.get(f"/api/tickets/{number}", headers=auth)
    assert response.status_code == 404
    assert "error" in response.get_json()


def test_existing_ticket_is_found_by_its_number(client, session, auth):
    ticket = add_ticket(session)
    response = client.get(f"/api/tickets/{ticket.number}", headers=auth)
    assert response.status_code == 200
    assert response.get_json()["number"] == ticket.number


def test_unknown_api_path_and_wrong_method_answer_json(client, auth):
    missing = client.get("/api/nothing-here", headers=auth)
    assert (missing.status_code, missing.get_json()) == (404, {"error": "not found"})
    wrong = client.delete("/api/tickets", headers=auth)
    assert wrong.status_code == 405
    assert wrong.get_json() == {"error": "method not allowed"}
    assert "GET" in wrong.headers["Allow"]


def test_pages_outside_the_api_keep_their_own_errors(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert not response.is_json
