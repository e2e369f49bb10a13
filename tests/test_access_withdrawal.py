"""Withdrawing access: signing out, deactivating an account, revoking tokens; a private database."""

import stat
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, select, text
from support_helpers import PASSWORD, make_staff, page_token, sign_in

from app.schema import upgrade_database
from tickets.models import ApiToken
from tickets.staff import find_staff, issue_token


def copied_session(client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def test_a_session_cookie_copied_before_signing_out_stops_working(app, client, session):
    make_staff(session)
    sign_in(client)
    stolen = copied_session(client)
    assert client.get("/support").status_code == 200
    client.post("/support/logout", data={"csrf_token": page_token(client)})
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    answer = thief.get("/support")
    assert answer.status_code == 302
    assert "/support/login" in answer.headers["Location"]


def test_signing_out_on_one_device_ends_the_other_sessions_too(app, client, session):
    make_staff(session)
    laptop, phone = app.test_client(), app.test_client()
    sign_in(laptop)
    sign_in(phone)
    laptop.post("/support/logout", data={"csrf_token": page_token(laptop)})
    assert phone.get("/support").status_code == 302
    sign_in(phone)  # and signing in again works
    assert phone.get("/support").status_code == 200


def test_deactivating_an_account_ends_its_sessions_and_tokens(app, client, session, cli):
    agent = make_staff(session)
    token = issue_token(session, staff=agent)
    session.commit()
    sign_in(client)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/tickets", headers=headers).status_code == 200
    result = cli("staff", "deactivate", "agent@otys.test")
    assert result.exit_code == 0, result.output
    assert "deactivated agent@otys.test" in result.stdout
    assert client.get("/support").status_code == 302
    assert client.get("/api/tickets", headers=headers).status_code == 401
    fresh = app.test_client()
    assert sign_in(fresh, password=PASSWORD).status_code == 401
    assert cli("staff", "deactivate", "agent@otys.test").exit_code == 1


def test_revoking_the_tokens_of_an_account(client, session, cli):
    agent = make_staff(session)
    first, second = issue_token(session, staff=agent), issue_token(session, staff=agent)
    session.commit()
    result = cli("staff", "token", "agent@otys.test", "--revoke")
    assert result.exit_code == 0
    assert result.stdout == "revoked 2 API token(s) of agent@otys.test\n"
    for token in (first, second):
        answer = client.get("/api/tickets", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401
    session.expire_all()
    assert find_staff(session, "agent@otys.test").active  # the account itself stays


def test_the_sqlite_database_and_its_wal_are_private(tmp_path):
    path = tmp_path / "var" / "ivr.sqlite3"
    url = f"sqlite:///{path}"
    upgrade_database(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("PRAGMA journal_mode=WAL"))
        connection.execute(
            text("INSERT INTO organizations (name, created_at) VALUES ('A', '2026-11-30')")
        )
    for file in (path, Path(f"{path}-wal")):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    engine.dispose()


def test_an_older_database_readable_by_all_is_tightened(tmp_path):
    path = tmp_path / "ivr.sqlite3"
    path.touch(mode=0o644)
    path.chmod(0o644)
    upgrade_database(f"sqlite:///{path}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_api_token_expires_after_its_days(app, client, session, clock):
    agent = make_staff(session)
    with app.app_context():
        token = issue_token(session, staff=agent, days=30)
        session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    clock.now += timedelta(days=29, hours=23)
    assert client.get("/api/tickets", headers=headers).status_code == 200
    clock.now += timedelta(hours=2)
    assert client.get("/api/tickets", headers=headers).status_code == 401


def test_staff_token_takes_a_validity_in_days(cli, session):
    make_staff(session)
    assert cli("staff", "token", "agent@otys.test", "--days", "7").exit_code == 0
    assert cli("staff", "token", "agent@otys.test", "--days", "0").exit_code == 2
    (row,) = session.scalars(select(ApiToken)).all()
    assert (row.expires_at - row.created_at).days == 7
