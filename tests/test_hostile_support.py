"""Property tests: the dashboard's and the API's parameters, at random, never answer a 5xx."""

import json
from datetime import date
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from support_helpers import make_organization, make_staff, make_ticket, sign_in, token_for

characters = st.characters(blacklist_categories=("Cs",))
junk = st.one_of(
    st.text(characters, max_size=30),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "1\n",
            "-1",
            "0",
            "1e309",
            "NaN",
            "0001-01-01",
            "9999-12-31",
            "9223372036854775808",
            "99999999999999999999",
            "2026-02-30",
            "/support\r\nX: 1",
        ]
    ),
    st.integers().map(str),
)
query_names = st.sampled_from(
    [
        "q",
        "status",
        "priority",
        "reason",
        "organization",
        "created_from",
        "created_to",
        "page",
        "per_page",
        "after",
        "source",
        "at",
        "endpoint",
        "_external",
        "next",
        "number",
        "from",
        "to",
    ]
)
queries = st.dictionaries(query_names, junk, max_size=5).map(
    lambda query: f"?{urlencode(query)}" if query else ""
)
ids = st.one_of(st.integers(min_value=-5, max_value=2**70).map(str), junk).map(
    lambda text: quote(text, safe="")
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
bodies = st.one_of(
    st.dictionaries(
        st.sampled_from(
            [
                "version",
                "status",
                "text",
                "minutes",
                "rating",
                "comment",
                "category",
                "release_week",
                "question",
                "note",
            ]
        ),
        json_values,
        max_size=4,
    ).map(json.dumps),
    st.sampled_from(
        [
            '{"version": Infinity}',
            '{"version": NaN}',
            "[" * 5000 + "]" * 5000,
            "{",
            "null",
            '"x"',
            "1e999999",
        ]
    ),
)

PROPERTY = hypothesis_settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

PAGES = (
    "/support",
    "/support/feed",
    "/support/callbacks",
    "/support/oncall",
    "/support/settings",
    "/support/staff",
    "/support/statistics",
    "/support/statistics.csv",
)
API_ACTIONS = (
    "acknowledge",
    "status",
    "close",
    "reopen",
    "category",
    "notes",
    "time",
    "rate-approval",
    "release-week",
)


def test_dashboard_pages_and_their_parameters_never_fail(app, client, session, clock):
    make_staff(session, role="admin")
    make_ticket(session, organization=make_organization(session), created_at=clock.now)
    sign_in(client)

    @PROPERTY
    @given(page=st.sampled_from(PAGES), query=queries, row=ids)
    def run(page, query, row):
        assert client.get(page + query).status_code < 500, page + query
        for path in (
            f"/support/tickets/{row}",
            f"/support/recordings/{row}",
            f"/support/callbacks/{row}/recording",
            f"/support/staff/{row}",
        ):
            assert client.get(path).status_code < 500, path

    run()


def test_the_staff_forms_with_junk_never_fail(app, client, session, clock):
    make_staff(session, role="admin")
    other = make_staff(session, email="other@otys.test", name="Other")
    sign_in(client)
    token = _token(client, "/support/staff")
    fields = st.fixed_dictionaries(
        {},
        optional={name: junk for name in ("name", "email", "role", "phone", "password", "days")},
    )

    @PROPERTY
    @given(form=fields)
    def run(form):
        for path in ("", f"/{other.id}", f"/{other.id}/password", f"/{other.id}/tokens"):
            answer = client.post(f"/support/staff{path}", data={**form, "csrf_token": token})
            assert answer.status_code < 500, (path, form)

    run()


def test_the_api_and_its_parameters_never_fail(app, client, session, clock):
    staff = make_staff(session, role="admin")
    ticket = make_ticket(session, organization=make_organization(session), created_at=clock.now)
    headers = {"Authorization": f"Bearer {token_for(session, staff)}"}

    @PROPERTY
    @given(
        query=queries,
        number=st.one_of(st.just(ticket.number), ids),
        action=st.sampled_from(API_ACTIONS),
        body=bodies,
    )
    def run(query, number, action, body):
        for path in ("/api/tickets" + query, "/api/oncall" + query, f"/api/tickets/{number}"):
            answer = client.get(path, headers=headers)
            assert answer.status_code < 500, path
            # Werkzeug merges doubled slashes with a redirect; every other answer is JSON.
            assert answer.is_json or 300 <= answer.status_code < 400, path
        answer = client.post(
            f"/api/tickets/{number}/{action}",
            data=body,
            headers={**headers, "Content-Type": "application/json"},
        )
        assert answer.status_code < 500, (number, action, body[:80])
        assert answer.is_json or 300 <= answer.status_code < 400

    run()


def test_sign_in_with_a_hostile_next_stays_on_the_dashboard(client, session):
    make_staff(session)
    for target in ("/support%0D%0ASet-Cookie:x=1", "/support\x00", "/support path"):
        answer = sign_in_to(client, target)
        assert answer.status_code == 303
        assert answer.headers["Location"] == "/support"
        client.post("/support/logout", data={"csrf_token": _token(client, "/support")})


def _token(client, path):
    from support_helpers import csrf_token

    return csrf_token(client.get(path).get_data(as_text=True))


def sign_in_to(client, target: str):
    from support_helpers import PASSWORD

    token = _token(client, "/support/login")
    return client.post(
        f"/support/login?next={target}",
        data={"email": "agent@otys.test", "password": PASSWORD, "csrf_token": token},
    )


def test_the_requests_that_answered_500_now_get_a_clear_answer(client, session, clock):
    staff = make_staff(session, role="admin")
    headers = {"Authorization": f"Bearer {token_for(session, staff)}"}
    sign_in(client)
    for path in (
        "/support?created_from=0001-01-01",
        "/support?created_to=9999-12-31",
        "/support/feed?after=9223372036854775808",
        "/support/recordings/99999999999999999999",
        "/support/callbacks/99999999999999999999/recording",
        "/support?page=2&endpoint=x",
        "/support/statistics?from=0001-01-01&to=9999-12-31",
        "/support/statistics.csv?from=2199-12-31&to=2000-01-01",
        "/support/statistics?from=2026-12-07%00",
    ):
        assert client.get(path).status_code < 500, path
    assert client.get("/api/tickets?page=1%0a", headers=headers).status_code == 400
    assert client.get("/api/tickets/100001%0a", headers=headers).status_code == 404
    json_headers = {**headers, "Content-Type": "application/json"}
    for body in ('{"version": Infinity}', "[" * 5000 + "]" * 5000):
        answer = client.post("/api/tickets/100001/notes", data=body, headers=json_headers)
        assert answer.status_code == 400, body[:20]
        assert "JSON object" in answer.get_json()["error"]


def test_the_statistics_period_at_random_never_fails(app, client, session, clock):
    make_staff(session)
    make_ticket(session, organization=make_organization(session), created_at=clock.now)
    sign_in(client)
    days = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(str)

    @PROPERTY
    @given(first=st.one_of(days, junk), last=st.one_of(days, junk))
    def run(first, last):
        query = urlencode({"from": first, "to": last})
        for path in ("/support/statistics", "/support/statistics.csv"):
            answer = client.get(f"{path}?{query}")
            assert answer.status_code in (200, 400), (path, query)

    run()


def test_a_search_with_a_nul_byte_finds_nothing_and_does_not_fail(client, session, clock):
    make_staff(session)
    make_ticket(
        session, organization=make_organization(session, "Acme Recruitment"), created_at=clock.now
    )
    sign_in(client)
    page = client.get("/support?q=Ac%00me")
    assert page.status_code == 200
    assert "Acme Recruitment" not in page.get_data(as_text=True).split("<tbody", 1)[-1]
