import re

import pytest
from sqlalchemy import func, select
from support_helpers import PASSWORD, IsolatedClient, make_staff, page_token, sign_in

from tickets.audit import recent_changes
from tickets.models import ApiToken, AuditEvent, StaffUser
from tickets.staff import check_password, find_staff, issue_token

NEW_PASSWORD = "a new long password"


@pytest.fixture
def client(app):
    app.test_client_class = IsolatedClient
    return app.test_client()


@pytest.fixture
def admin(session):
    return make_staff(session, email="admin@otys.test", name="Ada Admin", role="admin")


@pytest.fixture
def agent(session):
    return make_staff(session, email="agent@otys.test", name="Agent Smith")


@pytest.fixture
def as_admin(client, admin):
    assert sign_in(client, "admin@otys.test").status_code == 303
    return client


def text(response) -> str:
    return response.get_data(as_text=True)


def post(client, path: str, data: dict | None = None):
    """Post a Staff page form with the session's CSRF token."""
    token = page_token(client, "/support/staff")
    return client.post(path, data={**(data or {}), "csrf_token": token})


def account_form(**fields) -> dict:
    values = {"name": "Eva de Graaf", "email": "eva@otys.test", "role": "agent", "phone": ""}
    return {**values, **fields}


def reload(session, email: str) -> StaffUser | None:
    session.expire_all()
    return find_staff(session, email)


def staff_audit(session) -> list[tuple[str, str]]:
    session.expire_all()
    return [(c.actor, c.action) for c in recent_changes(session, action_prefix="staff_")]


def signed_in_client(app, email: str):
    other = app.test_client()
    assert sign_in(other, email).status_code == 303
    return other


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def shown_secret(response) -> str:
    match = re.search(r'id="secret-value" type="text" readonly value="([^"]+)"', text(response))
    assert match, "no secret shown"
    return match.group(1)


def test_agents_get_403_and_see_no_staff_link(app, client, session, admin, agent):
    sign_in(client, "agent@otys.test")
    assert 'href="/support/staff"' not in text(client.get("/support"))
    assert client.get("/support/staff").status_code == 403
    assert client.get(f"/support/staff/{admin.id}").status_code == 403
    token = page_token(client)
    for path in ("/support/staff", f"/support/staff/{admin.id}/deactivate"):
        answer = client.post(path, data={**account_form(), "csrf_token": token})
        assert answer.status_code == 403
    assert reload(session, "admin@otys.test").active
    assert reload(session, "eva@otys.test") is None


def test_the_page_lists_accounts_with_role_phone_access_and_tokens(as_admin, session, admin, agent):
    engineer = make_staff(session, email="anna@otys.test", name="Anna", phone="+31611111111")
    issue_token(session, staff=engineer)
    session.commit()
    page = text(as_admin.get("/support/staff"))
    assert 'href="/support/staff" aria-current="page"' in page
    row = re.search(rf'id="staff-{engineer.id}">(.*?)</tr>', page, re.S).group(1)
    for shown in ("Anna", "anna@otys.test", "Agent", "+31611111111", "Active", "1 valid"):
        assert shown in row
    assert "(you)" in re.search(rf'id="staff-{admin.id}">(.*?)</tr>', page, re.S).group(1)


def test_an_admin_adds_an_account_with_a_typed_password(app, as_admin, session):
    answer = post(
        as_admin,
        "/support/staff",
        account_form(phone="06-12345678", password=NEW_PASSWORD, role="admin"),
    )
    assert answer.status_code == 303
    eva = reload(session, "eva@otys.test")
    assert (eva.name, eva.role, eva.phone) == ("Eva de Graaf", "admin", "+31612345678")
    assert check_password(eva, NEW_PASSWORD)
    assert answer.headers["Location"] == f"/support/staff/{eva.id}"
    assert "Added admin account eva@otys.test" in text(as_admin.get(answer.headers["Location"]))
    assert staff_audit(session) == [("admin@otys.test", "staff_added")]
    assert sign_in(app.test_client(), "eva@otys.test", NEW_PASSWORD).status_code == 303


def test_a_generated_password_is_shown_once_and_works(app, as_admin, session):
    answer = post(as_admin, "/support/staff", account_form())
    assert answer.status_code == 200
    password = shown_secret(answer)
    assert len(password) >= 20
    eva = reload(session, "eva@otys.test")
    assert check_password(eva, password)
    assert 'id="secret-value"' not in text(as_admin.get(f"/support/staff/{eva.id}"))
    assert sign_in(app.test_client(), "eva@otys.test", password).status_code == 303


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": "admin@otys.test"}, "admin@otys.test already has an account"),
        ({"email": "ADMIN@otys.test "}, "admin@otys.test already has an account"),
        ({"email": "not-an-address"}, "is not an e-mail address"),
        ({"password": "short"}, "at least 10 characters"),
        ({"password": "x" * 201}, "longer than 200"),
        ({"phone": "call me maybe"}, "is not a phone number"),
        ({"role": "root"}, "Not a valid choice"),
        ({"name": ""}, "Name: This field is required"),
        ({"name": "n" * 201}, "Name: Field cannot be longer than 200"),
        ({"name": "Eva\x00"}, "a name cannot hold control characters"),
        ({"email": "eva\x00@otys.test"}, "is not an e-mail address"),
    ],
)
def test_adding_with_bad_input_says_why_and_changes_nothing(as_admin, session, fields, message):
    answer = post(as_admin, "/support/staff", account_form(**fields))
    assert answer.status_code == 400
    assert message in text(answer)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(StaffUser)) == 1
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_an_admin_edits_name_email_phone_and_role(app, as_admin, session, agent):
    answer = post(
        as_admin,
        f"/support/staff/{agent.id}",
        account_form(name="Agnes Smit", email="Agnes@otys.test", phone="+31 6 2000 0001"),
    )
    assert answer.status_code == 303
    agnes = reload(session, "agnes@otys.test")
    assert (agnes.id, agnes.name, agnes.phone, agnes.role) == (
        agent.id,
        "Agnes Smit",
        "+31620000001",
        "agent",
    )
    (change,) = recent_changes(session, action_prefix="staff_")
    assert change.actor == "admin@otys.test"
    assert change.detail == (
        "Agnes Smit <agnes@otys.test>: email agent@otys.test -> agnes@otys.test; "
        "name Agent Smith -> Agnes Smit; phone none -> +31620000001"
    )
    page = text(as_admin.get(f"/support/staff/{agent.id}"))
    assert "email agent@otys.test -&gt; agnes@otys.test" in page
    assert sign_in(app.test_client(), "agnes@otys.test").status_code == 303


def test_editing_to_a_taken_address_or_bad_phone_changes_nothing(as_admin, session, agent):
    for fields, message in [
        ({"email": "admin@otys.test"}, "admin@otys.test already has an account"),
        ({"phone": "12"}, "&#39;12&#39; is not a phone number"),
    ]:
        answer = post(as_admin, f"/support/staff/{agent.id}", account_form(**fields))
        assert answer.status_code == 400
        assert f"Nothing was changed: {message}" in text(answer)
    account = reload(session, "agent@otys.test")
    assert (account.name, account.phone) == ("Agent Smith", None)
    assert staff_audit(session) == []


def test_deactivating_ends_the_users_session_and_tokens_and_reactivating_reopens(
    app, as_admin, session, agent
):
    token = issue_token(session, staff=agent)
    session.commit()
    agents_browser = signed_in_client(app, "agent@otys.test")
    assert agents_browser.get("/support").status_code == 200
    assert app.test_client().get("/api/tickets", headers=bearer(token)).status_code == 200

    answer = post(as_admin, f"/support/staff/{agent.id}/deactivate")
    assert answer.status_code == 303
    assert not reload(session, "agent@otys.test").active
    assert agents_browser.get("/support").status_code == 302
    assert app.test_client().get("/api/tickets", headers=bearer(token)).status_code == 401
    assert sign_in(app.test_client(), "agent@otys.test").status_code == 401
    assert "Deactivated" in text(as_admin.get("/support/staff"))

    assert post(as_admin, f"/support/staff/{agent.id}/reactivate").status_code == 303
    assert reload(session, "agent@otys.test").active
    assert sign_in(app.test_client(), "agent@otys.test").status_code == 303
    assert app.test_client().get("/api/tickets", headers=bearer(token)).status_code == 401
    assert [action for _, action in staff_audit(session)] == [
        "staff_reactivated",
        "staff_deactivated",
        "staff_token_issued",
    ]


def test_resetting_a_password_ends_the_old_session(app, as_admin, session, agent):
    agents_browser = signed_in_client(app, "agent@otys.test")
    answer = post(as_admin, f"/support/staff/{agent.id}/password", {"password": NEW_PASSWORD})
    assert answer.status_code == 303
    assert agents_browser.get("/support").status_code == 302
    assert sign_in(app.test_client(), "agent@otys.test", PASSWORD).status_code == 401
    assert sign_in(app.test_client(), "agent@otys.test", NEW_PASSWORD).status_code == 303
    assert staff_audit(session) == [("admin@otys.test", "staff_password_reset")]


def test_a_generated_password_reset_is_shown_once(app, as_admin, session, agent):
    answer = post(as_admin, f"/support/staff/{agent.id}/password", {"password": ""})
    assert answer.status_code == 200
    password = shown_secret(answer)
    assert sign_in(app.test_client(), "agent@otys.test", password).status_code == 303


def test_a_short_new_password_is_refused_and_the_old_one_stays(as_admin, session, agent):
    answer = post(as_admin, f"/support/staff/{agent.id}/password", {"password": "short"})
    assert answer.status_code == 400
    assert "at least 10 characters" in text(answer)
    assert check_password(reload(session, "agent@otys.test"), PASSWORD)
    assert staff_audit(session) == []


def test_resetting_your_own_password_keeps_this_session_only(app, as_admin, session, admin):
    other_device = signed_in_client(app, "admin@otys.test")
    answer = post(as_admin, f"/support/staff/{admin.id}/password", {"password": NEW_PASSWORD})
    assert answer.status_code == 303
    assert as_admin.get("/support/staff").status_code == 200
    assert other_device.get("/support").status_code == 302


def test_revoking_one_token_then_all(app, as_admin, session, agent):
    first, second, third = (issue_token(session, staff=agent) for _ in range(3))
    session.commit()
    first_id = session.scalar(select(ApiToken.id).order_by(ApiToken.id))
    api = app.test_client()
    answer = post(as_admin, f"/support/staff/{agent.id}/tokens/{first_id}/revoke")
    assert answer.status_code == 303
    assert api.get("/api/tickets", headers=bearer(first)).status_code == 401
    assert api.get("/api/tickets", headers=bearer(second)).status_code == 200
    page = text(as_admin.get(f"/support/staff/{agent.id}"))
    assert re.search(rf'id="token-{first_id}">.*?Revoked', page, re.S)
    assert post(as_admin, f"/support/staff/{agent.id}/tokens/revoke").status_code == 303
    for token in (second, third):
        assert api.get("/api/tickets", headers=bearer(token)).status_code == 401
    assert reload(session, "agent@otys.test").active  # the account itself stays
    assert [action for _, action in staff_audit(session)][:2] == [
        "staff_tokens_revoked",
        "staff_token_revoked",
    ]


def test_a_token_of_another_account_or_an_unknown_one_is_404(as_admin, session, admin, agent):
    issue_token(session, staff=admin)
    session.commit()
    admins_token = session.scalar(select(ApiToken.id))
    for path in (
        f"/support/staff/{agent.id}/tokens/{admins_token}/revoke",
        f"/support/staff/{agent.id}/tokens/99999/revoke",
        "/support/staff/99999/deactivate",
        "/support/staff/99999999999999999999/deactivate",
    ):
        assert post(as_admin, path).status_code == 404, path
    assert as_admin.get("/support/staff/99999").status_code == 404
    session.expire_all()
    assert session.scalar(select(ApiToken.revoked_at)) is None


def test_issuing_a_token_shows_it_once_and_it_opens_the_api(app, as_admin, session, agent):
    answer = post(as_admin, f"/support/staff/{agent.id}/tokens", {"days": "30"})
    assert answer.status_code == 200
    token = shown_secret(answer)
    assert app.test_client().get("/api/tickets", headers=bearer(token)).status_code == 200
    row = session.scalar(select(ApiToken))
    assert (row.expires_at - row.created_at).days == 30
    assert token not in text(as_admin.get(f"/support/staff/{agent.id}"))
    assert staff_audit(session) == [("admin@otys.test", "staff_token_issued")]


@pytest.mark.parametrize("days", ["0", "731", "many", "", "9" * 5000])
def test_a_token_lifetime_out_of_range_is_refused(as_admin, session, agent, days):
    answer = post(as_admin, f"/support/staff/{agent.id}/tokens", {"days": days})
    assert answer.status_code == 400
    assert session.scalar(select(ApiToken)) is None


def test_a_deactivated_account_gets_no_new_token(as_admin, session, agent):
    post(as_admin, f"/support/staff/{agent.id}/deactivate")
    answer = post(as_admin, f"/support/staff/{agent.id}/tokens", {"days": "30"})
    assert answer.status_code == 400
    assert "is deactivated" in text(answer)
    assert session.scalar(select(ApiToken)) is None


def test_the_last_active_admin_cannot_be_deactivated_or_demoted(as_admin, session, admin):
    former = make_staff(session, email="old@otys.test", name="Old Admin", role="admin")
    post(as_admin, f"/support/staff/{former.id}/deactivate")
    refused = [
        post(as_admin, f"/support/staff/{admin.id}/deactivate"),
        post(
            as_admin,
            f"/support/staff/{admin.id}",
            account_form(name="Ada Admin", email="admin@otys.test", role="agent"),
        ),
    ]
    for answer in refused:
        assert answer.status_code == 400
        assert "admin@otys.test is the last active admin" in text(answer)
    account = reload(session, "admin@otys.test")
    assert (account.active, account.role) == (True, "admin")
    post(as_admin, f"/support/staff/{former.id}/reactivate")
    demoted = post(
        as_admin,
        f"/support/staff/{admin.id}",
        account_form(name="Ada Admin", email="admin@otys.test", role="agent"),
    )
    assert demoted.status_code == 303
    assert reload(session, "admin@otys.test").role == "agent"
    assert as_admin.get("/support/staff").status_code == 403


def test_forms_without_a_csrf_token_are_refused_and_change_nothing(as_admin, session, agent):
    issue_token(session, staff=agent)
    session.commit()
    token_id = session.scalar(select(ApiToken.id))
    for path, data in [
        ("/support/staff", account_form(password=NEW_PASSWORD)),
        (f"/support/staff/{agent.id}", account_form(name="Forged")),
        (f"/support/staff/{agent.id}/deactivate", {}),
        (f"/support/staff/{agent.id}/password", {"password": NEW_PASSWORD}),
        (f"/support/staff/{agent.id}/tokens", {"days": "30"}),
        (f"/support/staff/{agent.id}/tokens/revoke", {}),
        (f"/support/staff/{agent.id}/tokens/{token_id}/revoke", {}),
    ]:
        for forged in ({}, {"csrf_token": "forged.token"}):
            answer = as_admin.post(path, data={**data, **forged})
            assert answer.status_code == 400, path
            assert "did not come from this site" in text(answer)
    account = reload(session, "agent@otys.test")
    assert (account.active, account.name) == (True, "Agent Smith")
    assert check_password(account, PASSWORD)
    assert session.scalar(select(func.count()).select_from(ApiToken)) == 1
    assert reload(session, "eva@otys.test") is None
    assert [action for _, action in staff_audit(session)] == ["staff_token_issued"]


def test_staff_changes_show_on_the_settings_page_trail(as_admin, session, agent):
    post(as_admin, f"/support/staff/{agent.id}/deactivate")
    page = text(as_admin.get("/support/settings"))
    assert "Account deactivated" in page
    assert "Agent Smith &lt;agent@otys.test&gt;: 0 token(s) revoked" in page


def test_an_admin_may_deactivate_themselves_while_another_admin_remains(as_admin, session, admin):
    make_staff(session, email="bob@otys.test", name="Bob", role="admin")
    answer = post(as_admin, f"/support/staff/{admin.id}/deactivate")
    assert answer.status_code == 303
    assert as_admin.get("/support/staff").status_code == 302  # signed out
    assert not reload(session, "admin@otys.test").active
