import pytest
from sqlalchemy import inspect
from support_helpers import IsolatedClient, make_organization, make_staff, make_ticket

from core.db import db
from tickets.models import Ticket, TicketEvent, TimeEntry
from tickets.staff import issue_token


@pytest.fixture
def client(app):
    app.test_client_class = IsolatedClient
    return app.test_client()


@pytest.fixture
def agent(session):
    return make_staff(session)


@pytest.fixture
def token(session, agent):
    result = issue_token(session, staff=agent)
    session.commit()
    return result


@pytest.fixture
def admin_token(session):
    admin = make_staff(session, email="admin@otys.test", name="Ada Admin", role="admin")
    result = issue_token(session, staff=admin)
    session.commit()
    return result


@pytest.fixture
def ticket(session):
    # Detached: the requests share this thread's session and may roll it back; the test keeps
    # the ticket as it was made (its number, its first version).
    made = make_ticket(session, organization=make_organization(session))
    session.expunge(made)
    return made


@pytest.fixture
def api(client, token):
    def post(path, body=None, *, bearer=token, **kwargs):
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        if body is not None:
            kwargs["json"] = body
        return client.post(f"/api/tickets/{path}", headers=headers, **kwargs)

    return post


def stored(ticket) -> Ticket:
    # By its identity: a request in this thread may have closed the session `ticket` was in.
    db.session.expire_all()
    return db.session.get(Ticket, inspect(ticket).identity)


def event_count() -> int:
    return db.session.query(TicketEvent).count()


ACTIONS = [
    ("acknowledge", None),
    ("status", {"status": "resolved"}),
    ("close", {"rating": 5}),
    ("reopen", None),
    ("category", {"category": "question"}),
    ("notes", {"text": "hello"}),
    ("time", {"minutes": 5}),
    ("rate-approval", None),
    ("release-week", {"release_week": "2030-W10"}),
]


@pytest.mark.parametrize(("action", "body"), ACTIONS)
def test_every_action_needs_a_valid_bearer_token(api, ticket, action, body):
    for bearer in (None, "not-a-token", "x" * 500):
        response = api(f"{ticket.number}/{action}", body, bearer=bearer)
        assert response.status_code == 401
        assert response.get_json() == {"error": "a valid bearer token is required"}
    assert stored(ticket).version == ticket.version
    assert event_count() == 0


@pytest.mark.parametrize(("action", "body"), ACTIONS)
def test_unknown_tickets_are_404_in_json(api, action, body):
    for number in ("999999", "12", "abc", "9" * 30):
        response = api(f"{number}/{action}", body)
        assert response.status_code == 404
        assert response.get_json()["code"] == "not_found"


def test_acknowledge_assigns_and_answers_the_ticket(api, ticket):
    response = api(f"{ticket.number}/acknowledge")
    assert response.status_code == 200
    data = response.get_json()
    assert data["number"] == ticket.number
    assert data["status"] == "in_progress"
    assert data["assigned_to"]["email"] == "agent@otys.test"
    assert data["acknowledged_by"]["name"] == "Agent Smith"
    assert data["acknowledged_at"].endswith("+00:00")
    assert data["version"] == stored(ticket).version
    assert [e["kind"] for e in data["events"]] == ["acknowledged", "assigned", "status"]
    assert all(e["staff"]["email"] == "agent@otys.test" for e in data["events"])


def test_walk_the_whole_lifecycle_through_the_api(api, ticket):
    steps = [
        {"status": "in_progress"},
        {"status": "waiting_for_customer", "question": "Which page shows the error?"},
        {"status": "in_progress"},
        {"status": "with_product_team"},
        {"status": "planned", "release_week": "2030-W22"},
        {"status": "resolved"},
        {"status": "closed", "rating": 5, "comment": "Great help"},
    ]
    version = ticket.version
    for body in steps:
        response = api(f"{ticket.number}/status", {**body, "version": version})
        assert response.status_code == 200, response.get_json()
        data = response.get_json()
        assert data["status"] == body["status"]
        version = data["version"]
    assert data["rating"] == 5
    assert data["rating_comment"] == "Great help"
    assert data["release_week"] == "2030-W22"
    assert data["waiting_question"] == "Which page shows the error?"
    assert data["closed_at"] is not None
    assert data["next_statuses"] == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"status": "closed"}, 400, "invalid_input"),
        ({"status": "closed", "rating": 0}, 400, "invalid_input"),
        ({"status": "closed", "rating": 6}, 400, "invalid_input"),
        ({"status": "closed", "rating": "great"}, 400, "invalid_input"),
        ({"status": "planned", "release_week": "2025-W53"}, 400, "invalid_input"),
        ({"status": "planned", "release_week": 202522}, 400, "invalid_input"),
        ({"status": "waiting_for_customer"}, 400, "invalid_input"),
        ({"status": "waiting_for_customer", "question": ["a"]}, 400, "invalid_input"),
        ({"status": "finished"}, 400, "invalid_input"),
        ({"status": None}, 400, "invalid_input"),
        ({"status": "new"}, 409, "invalid_transition"),
        ({"status": "resolved", "version": 99}, 409, "stale_version"),
        ({"status": "resolved", "version": "one"}, 400, "invalid_input"),
    ],
)
def test_bad_status_changes_are_refused_in_json_and_change_nothing(api, ticket, body, status, code):
    ticket_in_progress = stored(ticket)
    ticket_in_progress.status = "in_progress"
    db.session.commit()
    version = stored(ticket).version
    response = api(f"{ticket.number}/status", body)
    assert response.status_code == status
    data = response.get_json()
    assert data["code"] == code
    assert data["error"]
    after = stored(ticket)
    assert (after.status, after.version) == ("in_progress", version)
    assert event_count() == 0


def test_body_must_be_a_json_object(api, ticket):
    for raw in ("[1, 2]", "not json", '"closed"'):
        response = api(f"{ticket.number}/status", data=raw, content_type="application/json")
        assert response.status_code == 400
        assert response.get_json()["code"] == "invalid_input"
    response = api(f"{ticket.number}/status", ["closed"])
    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_input"


def test_closing_by_the_close_endpoint_and_reopening_needs_an_admin(api, admin_token, ticket):
    assert api(f"{ticket.number}/close", {"rating": 7}).status_code == 400
    response = api(f"{ticket.number}/close", {"rating": 3, "comment": "ok"})
    assert response.status_code == 200
    assert response.get_json()["rating"] == 3
    refused = api(f"{ticket.number}/reopen")
    assert refused.status_code == 403
    assert refused.get_json()["code"] == "forbidden"
    again = api(f"{ticket.number}/close", {"rating": 3})
    assert again.status_code == 409
    reopened = api(f"{ticket.number}/reopen", bearer=admin_token)
    assert reopened.status_code == 200
    assert reopened.get_json()["status"] == "in_progress"


def test_time_rules_through_the_api(api, ticket):
    assert api(f"{ticket.number}/category", {"category": "question"}).status_code == 200
    first = api(f"{ticket.number}/time", {"minutes": 30, "note": "walkthrough"})
    assert first.status_code == 201
    assert first.get_json()["free_minutes_left"] == 0
    refused = api(f"{ticket.number}/time", {"minutes": 5})
    assert refused.status_code == 409
    assert refused.get_json()["code"] == "rate_approval_required"
    for bad in (-1, 0, 481, 10**12, "5 minutes", None, 1.5, True):
        response = api(f"{ticket.number}/time", {"minutes": bad})
        assert response.status_code == 400, bad
    assert db.session.query(TimeEntry).count() == 1
    approved = api(f"{ticket.number}/rate-approval")
    assert approved.status_code == 200
    assert approved.get_json()["rate_approved_at"] is not None
    billed = api(f"{ticket.number}/time", {"minutes": 5})
    assert billed.status_code == 201
    assert billed.get_json()["billable_minutes"] == 5
    assert billed.get_json()["minutes_logged"] == 35


def test_category_notes_and_release_week(api, ticket):
    bad = api(f"{ticket.number}/category", {"category": "feature"})
    assert bad.status_code == 400
    assert api(f"{ticket.number}/notes", {"text": ""}).status_code == 400
    note = api(f"{ticket.number}/notes", {"text": "Customer sent a screenshot"})
    assert note.status_code == 201
    assert note.get_json()["events"][-1]["detail"] == "Customer sent a screenshot"
    not_planned = api(f"{ticket.number}/release-week", {"release_week": "2030-W10"})
    assert not_planned.status_code == 409
    api(f"{ticket.number}/status", {"status": "in_progress"})
    api(f"{ticket.number}/status", {"status": "planned", "release_week": "2030-W10"})
    assert api(f"{ticket.number}/release-week", {"release_week": "2030-W60"}).status_code == 400
    moved = api(f"{ticket.number}/release-week", {"release_week": "2030-w14"})
    assert moved.status_code == 200
    assert moved.get_json()["release_week"] == "2030-W14"


def test_writes_are_visible_through_the_read_api(client, api, token, ticket):
    api(f"{ticket.number}/close", {"rating": 4, "comment": "fine"})
    response = client.get(
        f"/api/tickets/{ticket.number}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert response.get_json()["rating"] == 4


def test_wrong_method_is_answered_in_json(client, token, ticket):
    response = client.get(
        f"/api/tickets/{ticket.number}/acknowledge", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 405
    assert "error" in response.get_json()
