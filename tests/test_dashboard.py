import re
from datetime import UTC, datetime, timedelta

import pytest
import requests
from helpers import AMSTERDAM, spoken
from support_helpers import (
    PASSWORD,
    IsolatedClient,
    csrf_token,
    make_call_ticket,
    make_organization,
    make_staff,
    make_ticket,
    page_token,
    sign_in,
)

from core.db import db
from tickets import availability
from tickets.models import Announcement, CallbackRequest, StaffUser, Ticket, TicketEvent, TimeEntry

ACCOUNT_SID = "AC" + "ab" * 16


@pytest.fixture
def settings_overrides():
    return {"twilio_account_sid": ACCOUNT_SID}


@pytest.fixture
def client(app):
    app.test_client_class = IsolatedClient
    return app.test_client()


@pytest.fixture
def agent(session):
    return make_staff(session)


@pytest.fixture
def admin(session):
    return make_staff(session, email="admin@otys.test", name="Ada Admin", role="admin")


@pytest.fixture
def acme(session):
    return make_organization(session, "Acme Recruitment")


@pytest.fixture
def signed_in(client, agent):
    response = sign_in(client)
    assert response.status_code == 303
    return client


@pytest.fixture
def signed_in_admin(client, admin):
    response = sign_in(client, "admin@otys.test")
    assert response.status_code == 303
    return client


def text(response) -> str:
    return response.get_data(as_text=True)


def reload(session, ticket) -> Ticket:
    session.expire_all()
    return session.get(Ticket, ticket.id)


def post_form(client, path: str, data: dict | None = None):
    """Post a dashboard form with the session's CSRF token."""
    return client.post(path, data={**(data or {}), "csrf_token": page_token(client)})


def queue_numbers(response) -> list[str]:
    return re.findall(r'class="ticket-link" href="/support/tickets/(\d+)"', text(response))


# ----------------------------------------------------------------------------- signing in


def test_no_page_shows_ticket_data_without_sign_in(client, session, acme):
    ticket = make_call_ticket(session, organization=acme)
    call_id = ticket.calls[0].id if ticket.calls else 1
    for path in (
        "/support",
        f"/support/tickets/{ticket.number}",
        "/support/callbacks",
        "/support/settings",
        f"/support/recordings/{call_id}",
    ):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/support/login?next=")
        assert "Acme" not in text(response)
    response = client.get("/support/feed?after=0")
    assert response.status_code == 401
    assert response.get_json() == {"error": "sign in first"}


def test_actions_without_sign_in_change_nothing(client, session, acme):
    ticket = make_ticket(session, organization=acme)
    page = client.get("/support/login")
    response = client.post(
        f"/support/tickets/{ticket.number}/acknowledge",
        data={"csrf_token": csrf_token(text(page))},
    )
    assert response.status_code == 302
    assert reload(session, ticket).acknowledged_at is None


def test_sign_in_shows_the_queue_and_sign_out_ends_it(client, session, agent, acme):
    make_ticket(session, organization=acme)
    response = sign_in(client)
    assert response.status_code == 303
    assert response.headers["Location"] == "/support"
    page = client.get("/support")
    assert page.status_code == 200
    assert "Acme Recruitment" in text(page)
    assert "Agent Smith" in text(page)
    assert client.get("/support/logout").status_code == 405  # a link cannot sign anyone out
    response = post_form(client, "/support/logout")
    assert response.status_code == 303
    assert client.get("/support").status_code == 302


def test_sign_in_returns_to_the_page_asked_for_but_never_off_site(client, agent):
    page = client.get("/support/login?next=/support/callbacks")
    data = {"email": "agent@otys.test", "password": PASSWORD, "csrf_token": csrf_token(text(page))}
    response = client.post("/support/login?next=/support/callbacks", data=data)
    assert response.headers["Location"] == "/support/callbacks"
    post_form(client, "/support/logout")
    for target in ("https://evil.example/", "//evil.example/support", "/\\evil.example"):
        page = client.get("/support/login")
        data["csrf_token"] = csrf_token(text(page))
        response = client.post(f"/support/login?next={target}", data=data)
        assert response.headers["Location"] == "/support", target
        post_form(client, "/support/logout")


def test_wrong_password_and_unknown_account_get_the_same_polite_answer(client, agent):
    wrong = sign_in(client, password="not the password")
    unknown = sign_in(client, email="nobody@otys.test")
    assert wrong.status_code == unknown.status_code == 401
    message = "the e-mail address or password is not right"
    assert message in text(wrong)
    assert message in text(unknown)
    assert client.get("/support").status_code == 302


def test_five_failures_lock_the_address_out_for_fifteen_minutes_from_that_source_only(
    app, clock, client, session, agent
):
    for _ in range(5):
        assert sign_in(client, password="guess").status_code == 401
    clock.now += timedelta(minutes=14, seconds=59)
    locked = sign_in(client)  # even the right password is refused while locked
    assert locked.status_code == 401
    assert "locked for a while" in text(locked)
    assert client.get("/support").status_code == 302

    # The named person, from their own desk, is not kept out by someone else's guessing.
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "10.0.0.9"
    assert sign_in(elsewhere).status_code == 303

    clock.now += timedelta(seconds=2)
    assert sign_in(client).status_code == 303


def test_every_failed_sign_in_costs_one_password_hash_until_locked(
    monkeypatch, clock, client, session, agent
):
    import tickets.passwords

    checks = []
    real = tickets.passwords.check_password_hash

    def counting(hashed, password):
        checks.append(password)
        return real(hashed, password)

    monkeypatch.setattr(tickets.passwords, "check_password_hash", counting)
    sign_in(client, email="nobody@otys.test", password="a")  # unknown account
    sign_in(client, password="b")  # wrong password
    for _ in range(4):
        sign_in(client, password="c")
    sign_in(client, password="d")  # locked: refused unheard, nothing to time
    assert checks == ["a", "b", "c", "c", "c", "c"]


def test_a_deactivated_account_cannot_sign_in_and_is_signed_out(client, session, agent):
    sign_in(client)
    agent = session.get(StaffUser, agent.id)  # each request closed the test's session
    agent.active = False
    session.commit()
    assert client.get("/support").status_code == 302
    assert sign_in(client).status_code == 401


# ------------------------------------------------------------------------------------ CSRF


def test_a_form_post_without_or_with_a_forged_csrf_token_is_refused(signed_in, session, acme):
    ticket = make_ticket(session, organization=acme)
    path = f"/support/tickets/{ticket.number}/acknowledge"
    missing = signed_in.post(path, data={"version": ticket.version})
    forged = signed_in.post(path, data={"version": ticket.version, "csrf_token": "forged.token"})
    for response in (missing, forged):
        assert response.status_code == 400
        assert "did not come from this site" in text(response)
    assert reload(session, ticket).acknowledged_at is None
    assert session.query(TicketEvent).count() == 0


def test_login_form_needs_its_csrf_token(client, agent):
    response = client.post(
        "/support/login", data={"email": "agent@otys.test", "password": PASSWORD}
    )
    assert response.status_code == 400
    assert client.get("/support").status_code == 302


def test_signed_twilio_webhooks_and_token_api_need_no_csrf_token(phone, client, session, agent):
    from tickets.staff import issue_token

    call = phone()
    root = call.start()  # a signed POST to /voice/incoming, answered with TwiML
    assert spoken(root)
    call.hang_up()
    ticket = make_ticket(session)
    token = issue_token(session, staff=agent)
    session.commit()
    response = client.post(
        f"/api/tickets/{ticket.number}/notes",
        json={"text": "from a script"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201


def test_dashboard_pages_are_not_cached_or_framed(signed_in):
    response = signed_in.get("/support")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


# ----------------------------------------------------------------------------------- queue


def test_open_urgent_tickets_come_first_then_newest(clock, signed_in, session, acme):
    now = clock.now
    old_urgent = make_ticket(session, organization=acme, created_at=now - timedelta(days=3))
    new_normal = make_ticket(session, priority="normal", created_at=now - timedelta(minutes=5))
    closed_urgent = make_ticket(
        session, status="closed", rating=5, created_at=now - timedelta(minutes=1)
    )
    older_normal = make_ticket(session, priority="low", created_at=now - timedelta(days=1))
    new_urgent = make_ticket(session, status="in_progress", created_at=now - timedelta(hours=2))
    numbers = queue_numbers(signed_in.get("/support"))
    assert numbers == [
        new_urgent.number,
        old_urgent.number,
        closed_urgent.number,
        new_normal.number,
        older_normal.number,
    ]


def test_paging_continues_after_the_urgent_tickets(clock, signed_in, session):
    now = clock.now
    urgent = [make_ticket(session, created_at=now - timedelta(days=10 + i)) for i in range(3)]
    others = [
        make_ticket(session, priority="normal", created_at=now - timedelta(minutes=i))
        for i in range(50)
    ]
    first = queue_numbers(signed_in.get("/support"))
    assert first[:3] == [t.number for t in urgent]
    assert first[3:] == [t.number for t in others[:47]]
    page = signed_in.get("/support?page=2")
    assert queue_numbers(page) == [t.number for t in others[47:]]
    assert 'rel="prev"' in text(page) and 'rel="next"' not in text(page)
    assert queue_numbers(signed_in.get("/support?page=3")) == []
    assert signed_in.get("/support?page=-4").status_code == 200


def test_filters_by_status_priority_reason_organisation_and_date(clock, signed_in, session, acme):
    # Late in the UTC evening the desk's (Amsterdam) date is already the next day: the date
    # filters read Amsterdam dates, so the test must too.
    clock.now = datetime(2026, 11, 29, 22, 40, tzinfo=UTC)
    now = clock.now
    globex = make_organization(session, "Globex Staffing")
    outage = make_ticket(session, organization=acme, reason="outage", created_at=now)
    bug = make_ticket(
        session, organization=globex, reason="urgent_bug", status="planned", created_at=now
    )
    normal = make_ticket(
        session,
        priority="normal",
        reason=None,
        status="closed",
        created_at=now - timedelta(days=40),
    )
    assert queue_numbers(signed_in.get("/support?status=planned")) == [bug.number]
    assert set(queue_numbers(signed_in.get("/support?status=open"))) == {
        outage.number,
        bug.number,
    }
    assert queue_numbers(signed_in.get("/support?priority=normal")) == [normal.number]
    assert queue_numbers(signed_in.get("/support?reason=urgent_bug")) == [bug.number]
    assert queue_numbers(signed_in.get(f"/support?organization={globex.id}")) == [bug.number]
    old_day = (now - timedelta(days=40)).astimezone(AMSTERDAM).date().isoformat()
    assert old_day != (now - timedelta(days=40)).date().isoformat()  # the hour that used to fail
    assert queue_numbers(
        signed_in.get(f"/support?created_from={old_day}&created_to={old_day}")
    ) == [normal.number]
    recent = (now - timedelta(days=2)).astimezone(AMSTERDAM).date().isoformat()
    assert normal.number not in queue_numbers(signed_in.get(f"/support?created_from={recent}"))
    assert "(ignored)" not in text(signed_in.get("/support"))
    assert "(ignored)" not in text(signed_in.get("/support?organization=&status=&q="))
    odd = signed_in.get("/support?created_from=yesterday&status=bogus")
    assert odd.status_code == 200
    assert "(ignored)" in text(odd)


@pytest.mark.parametrize(
    "query", ["0612345678", "+31 6 1234 5678", "06-12345678", "0031612345678", "(06) 12 34 56 78"]
)
def test_search_finds_a_caller_in_any_notation(signed_in, session, query):
    mine = make_ticket(session, caller="+31612345678")
    make_ticket(session, caller="+31687654321")
    response = signed_in.get("/support", query_string={"q": query})
    assert queue_numbers(response) == [mine.number]


def test_search_by_ticket_number_and_organisation_name(signed_in, session, acme):
    globex = make_organization(session, "Globex Staffing")
    first = make_ticket(session, organization=acme)
    second = make_ticket(session, organization=globex)
    assert queue_numbers(signed_in.get(f"/support?q={second.number}")) == [second.number]
    assert queue_numbers(signed_in.get("/support?q=acme")) == [first.number]
    assert queue_numbers(signed_in.get("/support?q=STAFF")) == [second.number]
    assert queue_numbers(signed_in.get("/support?q=100%25")) == []
    assert queue_numbers(signed_in.get("/support?q=nothing+like+it")) == []


def test_feed_returns_only_new_urgent_tickets_with_their_rows(signed_in, session, acme):
    before = make_ticket(session, organization=acme)
    start = signed_in.get("/support/feed").get_json()
    assert start == {"latest_id": before.id, "tickets": [], "notice": None}
    make_ticket(session, priority="normal")
    fresh = make_ticket(session, organization=acme, reason="urgent_bug")
    data = signed_in.get(f"/support/feed?after={before.id}").get_json()
    assert [item["number"] for item in data["tickets"]] == [fresh.number]
    assert data["latest_id"] == fresh.id
    item = data["tickets"][0]
    assert item["url"] == f"/support/tickets/{fresh.number}"
    assert "Acme Recruitment" in item["summary"] and "urgent bug" in item["summary"]
    assert f'data-ticket-id="{fresh.id}"' in item["row"]
    assert signed_in.get(f"/support/feed?after={fresh.id}").get_json()["tickets"] == []


# ------------------------------------------------------------------------------ ticket page


def test_ticket_page_shows_caller_call_timeline_and_recording(signed_in, session, acme):
    ticket = make_call_ticket(session, organization=acme)
    call = ticket.calls[0]
    page = text(signed_in.get(f"/support/tickets/{ticket.number}"))
    for expected in (
        "+31612345678",
        "Petra de Boer",
        "Super user",
        "Acme Recruitment",
        "Emergency",
        "Within working hours",
        "Verified",
        "Major outage",
        "De hele omgeving geeft een foutmelding",
        "Engineer rung",
        "Support engineer 1, Support engineer 2",
        "Engineer accepted",
        "Answered by an engineer",
        "the whole environment shows an error",
        f'src="/support/recordings/{call.id}"',
        "not yet",
    ):
        assert expected in page, expected


def test_unknown_ticket_is_a_clear_404(signed_in):
    for number in ("999999", "abc", "1" * 30):
        response = signed_in.get(f"/support/tickets/{number}")
        assert response.status_code == 404
        assert "There is no ticket" in text(response)
    response = post_form(signed_in, "/support/tickets/999999/acknowledge", {"version": "1"})
    assert response.status_code == 404


def ticket_form(client, ticket, action: str, data: dict):
    page = text(client.get(f"/support/tickets/{ticket.number}"))
    shown = re.search(r'name="version" type="hidden" value="(\d+)"', page)
    version = shown.group(1) if shown else str(reload(db.session, ticket).version)
    payload = {"version": version, "csrf_token": csrf_token(page), **data}
    return client.post(f"/support/tickets/{ticket.number}/{action}", data=payload)


def test_acknowledge_from_the_page_shows_who_and_time_to_acknowledge(
    clock, signed_in, session, acme
):
    created = clock.now - timedelta(minutes=3, seconds=7)
    ticket = make_ticket(session, organization=acme, created_at=created)
    response = ticket_form(signed_in, ticket, "acknowledge", {})
    assert response.status_code == 303
    page = text(signed_in.get(response.headers["Location"]))
    assert "Acknowledged and assigned to you." in page
    assert re.search(r"by Agent Smith", page)
    assert "3 min 07 s" in page
    assert reload(session, ticket).status == "in_progress"


def test_each_status_change_through_the_form(signed_in, session, acme):
    ticket = make_ticket(session, organization=acme)
    steps = [
        ("in_progress", {}),
        ("waiting_for_customer", {"question": "Which vacancy fails to publish?"}),
        ("in_progress", {}),
        ("with_product_team", {}),
        ("planned", {"release_week": "2030-W22"}),
        ("resolved", {}),
        ("closed", {"rating": "4", "comment": "Fixed before lunch"}),
    ]
    for status, extra in steps:
        response = ticket_form(signed_in, ticket, "status", {"status": status, **extra})
        assert response.status_code == 303, text(response)
        assert reload(session, ticket).status == status
    stored = reload(session, ticket)
    assert stored.waiting_question == "Which vacancy fails to publish?"
    assert stored.release_week == "2030-W22"
    page = text(signed_in.get(f"/support/tickets/{ticket.number}"))
    assert "Fixed before lunch" in page
    assert 'aria-label="rated 4 out of 5"' in page
    assert "only an admin can reopen it" in page.lower()
    listing = text(signed_in.get("/support"))
    assert 'aria-label="rated 4 out of 5"' in listing
    kinds = [e.kind for e in session.query(TicketEvent).filter_by(ticket_id=ticket.id)]
    assert kinds.count("status") == len(steps)


def test_refused_status_changes_explain_why_and_keep_the_ticket(signed_in, session, acme):
    ticket = make_ticket(session, organization=acme, status="in_progress")
    cases = [
        ({"status": "waiting_for_customer"}, 400, "question asked is required"),
        ({"status": "planned", "release_week": "2025-W53"}, 400, "week 53 does not exist"),
        ({"status": "closed", "rating": "9"}, 400, "rating must be 1, 2, 3, 4 or 5"),
        ({"status": "new"}, 409, "cannot become new"),
        ({"status": "gone"}, 400, "is not a status"),
    ]
    for data, status, message in cases:
        response = ticket_form(signed_in, ticket, "status", data)
        assert response.status_code == status, data
        assert message in text(response), data
        assert reload(session, ticket).status == "in_progress"
    assert session.query(TicketEvent).count() == 0


def test_a_stale_form_is_refused_with_a_reload_message(signed_in, session, acme):
    ticket = make_ticket(session, organization=acme)
    page = text(signed_in.get(f"/support/tickets/{ticket.number}"))
    token = csrf_token(page)
    old_version = re.search(r'name="version" type="hidden" value="(\d+)"', page).group(1)
    # Another agent changes the ticket meanwhile.
    stored = reload(session, ticket)
    stored.category = "question"
    session.commit()
    response = signed_in.post(
        f"/support/tickets/{ticket.number}/status",
        data={"csrf_token": token, "version": old_version, "status": "closed", "rating": "5"},
    )
    assert response.status_code == 409
    assert "changed by someone else" in text(response)
    assert reload(session, ticket).status == "new"


def test_category_note_time_and_rate_approval_from_the_page(signed_in, session, acme):
    ticket = make_ticket(session, organization=acme)
    assert ticket_form(signed_in, ticket, "category", {"category": "question"}).status_code == 303
    assert ticket_form(signed_in, ticket, "notes", {"text": "Rang the key user"}).status_code == 303
    assert ticket_form(signed_in, ticket, "time", {"minutes": "25"}).status_code == 303
    refused = ticket_form(signed_in, ticket, "time", {"minutes": "10"})
    assert refused.status_code == 409
    assert "approval of the standard rate" in text(refused)
    for bad in ("-3", "0", "100000", "lots"):
        response = ticket_form(signed_in, ticket, "time", {"minutes": bad})
        assert response.status_code == 400, bad
    assert ticket_form(signed_in, ticket, "rate-approval", {}).status_code == 303
    assert ticket_form(signed_in, ticket, "time", {"minutes": "10"}).status_code == 303
    minutes = sorted((e.minutes, e.billable) for e in session.query(TimeEntry))
    assert minutes == [(5, False), (5, True), (25, False)]
    page = text(signed_in.get(f"/support/tickets/{ticket.number}"))
    assert "35 min, of which 5 at the standard rate" in page
    assert "Rang the key user" in page
    assert re.search(r"approved by the customer, recorded [^<]* by Agent Smith", page)


def test_release_week_form_and_admin_reopen(client, session, agent, admin, acme):
    ticket = make_ticket(session, organization=acme, status="planned", release_week="2030-W22")
    sign_in(client)
    bad = ticket_form(client, ticket, "release-week", {"release_week": "2030-W99"})
    assert bad.status_code == 400
    ok = ticket_form(client, ticket, "release-week", {"release_week": "2030-W31"})
    assert ok.status_code == 303
    assert reload(session, ticket).release_week == "2030-W31"
    ticket_form(client, ticket, "status", {"status": "closed", "rating": "3"})
    assert ticket_form(client, ticket, "reopen", {}).status_code == 403
    post_form(client, "/support/logout")
    sign_in(client, email="admin@otys.test")
    assert ticket_form(client, ticket, "reopen", {}).status_code == 303
    assert reload(session, ticket).status == "in_progress"


def test_planned_status_form_suggests_a_release_week(signed_in, session):
    ticket = make_ticket(session, status="with_product_team")
    page = text(signed_in.get(f"/support/tickets/{ticket.number}"))
    assert re.search(r'name="release_week"[^>]*value="\d{4}-W\d{2}"', page)


# ------------------------------------------------------------------------------ recordings


class FakeUpstream:
    def __init__(self, status_code=200, body=b"ID3 fake mp3"):
        self.status_code = status_code
        self.headers = {"Content-Type": "audio/mpeg", "Content-Length": str(len(body))}
        self.body = body
        self.closed = False

    def iter_content(self, size):
        yield self.body

    def close(self):
        self.closed = True


@pytest.fixture
def twilio_fetches(monkeypatch):
    calls = []
    answer = {"response": FakeUpstream()}

    def fake_get(url, **kwargs):
        calls.append((url, kwargs))
        if isinstance(answer["response"], Exception):
            raise answer["response"]
        return answer["response"]

    monkeypatch.setattr(requests, "get", fake_get)
    return calls, answer


def test_recording_is_streamed_from_twilio_with_basic_auth(
    signed_in, session, acme, settings, twilio_fetches
):
    calls, _ = twilio_fetches
    ticket = make_call_ticket(session, organization=acme)
    response = signed_in.get(f"/support/recordings/{ticket.calls[0].id}")
    assert response.status_code == 200
    assert response.mimetype == "audio/mpeg"
    assert response.data == b"ID3 fake mp3"
    url, kwargs = calls[0]
    assert url == ticket.calls[0].recording_url + ".mp3"
    assert kwargs["auth"] == (ACCOUNT_SID, settings.twilio_auth_token.get_secret_value())


def test_recording_failures_are_clear_and_never_leak_the_token(
    app, signed_in, session, acme, settings, twilio_fetches
):
    calls, answer = twilio_fetches
    ticket = make_call_ticket(session, organization=acme)
    path = f"/support/recordings/{ticket.calls[0].id}"
    secret = settings.twilio_auth_token.get_secret_value()

    answer["response"] = FakeUpstream(status_code=404)
    gone = signed_in.get(path)
    assert gone.status_code == 404 and "no longer has this recording" in text(gone)

    answer["response"] = requests.ConnectionError(f"https://{ACCOUNT_SID}:{secret}@api.twilio.com")
    down = signed_in.get(path)
    assert down.status_code == 502 and secret not in text(down)

    app.config["SETTINGS"] = settings.model_copy(update={"twilio_account_sid": ""})
    unset = signed_in.get(path)
    assert unset.status_code == 502 and "TWILIO_ACCOUNT_SID" in text(unset)
    assert secret not in text(unset)

    app.config["SETTINGS"] = settings
    call = reload(session, ticket).calls[0]
    call.recording_url = "https://evil.example/recording"
    session.commit()
    before = len(calls)
    assert signed_in.get(path).status_code == 502
    assert len(calls) == before  # our credentials were never sent elsewhere
    assert signed_in.get("/support/recordings/987654").status_code == 404


# ---------------------------------------------------------------------- office voicemails


def test_office_voicemails_can_be_played_and_marked_called_back(signed_in, session, agent):
    callback = CallbackRequest(
        call_sid="CA" + "7" * 32,
        caller="+31201234567",
        department="finance",
        recording_url="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE7",
        recording_duration=31,
    )
    session.add(callback)
    session.commit()
    page = text(signed_in.get("/support/callbacks"))
    assert "+31201234567" in page
    assert f'src="/support/callbacks/{callback.id}/recording"' in page
    response = post_form(signed_in, f"/support/callbacks/{callback.id}/called-back")
    assert response.status_code == 303
    session.expire_all()
    stored = session.get(CallbackRequest, callback.id)
    assert stored.called_back_by_id == agent.id and stored.called_back_at is not None
    again = post_form(signed_in, f"/support/callbacks/{callback.id}/called-back")
    assert "already called back" in text(signed_in.get(again.headers["Location"]))
    assert "Called back recently" in text(signed_in.get("/support/callbacks"))
    assert post_form(signed_in, "/support/callbacks/4242/called-back").status_code == 404


# ------------------------------------------------------------------------- support switches


def test_hours_override_and_announcements_from_the_settings_page(
    clock, signed_in_admin, session, admin
):
    signed_in = signed_in_admin
    response = post_form(signed_in, "/support/settings/hours", {"mode": "closed"})
    assert response.status_code == 303
    assert availability.get_hours_override(session) == "closed"
    assert post_form(signed_in, "/support/settings/hours", {"mode": "never"}).status_code == 400
    assert availability.get_hours_override(session) == "closed"

    response = post_form(
        signed_in,
        "/support/settings/announcements",
        {"text_nl": "Er is een storing in OTYS Go.", "text_en": "OTYS Go is down."},
    )
    assert response.status_code == 303
    active = availability.active_announcement(session)
    assert active.text_nl == "Er is een storing in OTYS Go."
    assert active.created_by_id == admin.id
    page = text(signed_in.get("/support/settings"))
    assert "Heard by callers" in page

    past = post_form(
        signed_in,
        "/support/settings/announcements",
        {"text_nl": "Oud nieuws", "expires_at": "2001-01-01T10:00"},
    )
    assert past.status_code == 400 and "in the future" in text(past)
    empty = post_form(signed_in, "/support/settings/announcements", {"text_nl": ""})
    assert empty.status_code == 400
    assert session.query(Announcement).count() == 1

    response = post_form(signed_in, f"/support/settings/announcements/{active.id}/end")
    assert response.status_code == 303
    session.expire_all()
    assert availability.active_announcement(session) is None


def test_announcement_expiry_is_read_in_local_time(clock, signed_in_admin, session):
    post_form(
        signed_in_admin,
        "/support/settings/announcements",
        {"text_nl": "Onderhoud", "expires_at": "2099-06-01T18:30"},
    )
    row = session.query(Announcement).one()
    assert row.expires_at.isoformat() == "2099-06-01T16:30:00+00:00"  # 18:30 in Amsterdam


def test_only_admins_change_the_line_wide_switches(clock, signed_in, session):
    page = text(signed_in.get("/support/settings"))
    assert 'id="hours-form"' not in page and 'id="announcement-form"' not in page
    assert post_form(signed_in, "/support/settings/hours", {"mode": "closed"}).status_code == 403
    response = post_form(signed_in, "/support/settings/announcements", {"text_nl": "Storing"})
    assert response.status_code == 403
    assert availability.get_hours_override(session) == "auto"
    assert availability.active_announcement(session) is None


def test_every_switch_change_is_on_the_audit_trail(clock, signed_in_admin, session, cli):
    from tickets.audit import recent_changes

    post_form(signed_in_admin, "/support/settings/hours", {"mode": "closed"})
    post_form(signed_in_admin, "/support/settings/announcements", {"text_nl": "Storing in Go"})
    cli("hours", "set", "auto")
    in_order = sorted(recent_changes(session), key=lambda change: change.id)
    changes = [(c.actor, c.action, c.detail) for c in in_order]
    assert changes[0] == ("admin@otys.test", "hours_override", "closed")
    assert changes[1] == ("admin@otys.test", "announcement_posted", "Storing in Go")
    assert changes[2][0].startswith("cli:") and changes[2][1:] == ("hours_override", "auto")
    page = text(signed_in_admin.get("/support/settings"))
    assert "Recent changes" in page and "Announcement posted" in page
