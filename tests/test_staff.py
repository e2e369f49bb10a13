from sqlalchemy import func, inspect, select

import app.cli.staff
from core.db import db
from tickets.audit import recent_changes
from tickets.models import ApiToken, StaffUser
from tickets.staff import check_password, find_staff, staff_for_token

PASSWORD = "lange-wachtzin-42"


def staff_count(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(StaffUser))


def test_staff_add_reads_the_password_from_stdin(cli, session):
    result = cli(
        "staff", "add", "Eva@OTYS.example", "--name", "Eva de Graaf", input=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "created agent account eva@otys.example\n"
    account = find_staff(session, "eva@otys.example")
    assert (account.name, account.role) == ("Eva de Graaf", "agent")
    assert check_password(account, PASSWORD)
    assert PASSWORD not in account.password_hash


def test_staff_add_keeps_spaces_inside_the_password_but_not_the_line_end(cli, session):
    cli("staff", "add", "eva@otys.example", "--name", "Eva", input=f" {PASSWORD} \r\n")
    assert check_password(find_staff(session, "eva@otys.example"), f" {PASSWORD} ")


def test_staff_add_as_admin(cli, session):
    result = cli(
        "staff", "add", "bob@otys.example", "--name", "Bob", "--role", "admin", input=PASSWORD
    )
    assert result.exit_code == 0, result.output
    assert find_staff(session, "bob@otys.example").role == "admin"


def test_staff_add_refuses_an_unknown_role(cli, session):
    result = cli("staff", "add", "bob@otys.example", "--name", "Bob", "--role", "root")
    assert result.exit_code == 2
    assert staff_count(session) == 0


def test_staff_add_needs_a_name(cli, session):
    result = cli("staff", "add", "bob@otys.example", input=PASSWORD)
    assert result.exit_code == 2
    assert "--name" in result.stderr


def test_staff_add_refuses_a_duplicate(cli, session):
    cli("staff", "add", "eva@otys.example", "--name", "Eva", input=PASSWORD)
    result = cli("staff", "add", "EVA@otys.example", "--name", "Other Eva", input=PASSWORD + "2")
    assert result.exit_code == 1
    assert result.stderr == "error: eva@otys.example already has an account\n"
    assert result.stdout == ""
    assert staff_count(session) == 1
    assert check_password(find_staff(session, "eva@otys.example"), PASSWORD)


def test_staff_add_refuses_a_short_or_missing_password(cli, session):
    short = cli("staff", "add", "eva@otys.example", "--name", "Eva", input="kort\n")
    assert short.exit_code == 1
    assert "at least 10 characters" in short.stderr
    empty = cli("staff", "add", "eva@otys.example", "--name", "Eva", input="")
    assert empty.exit_code == 1
    assert staff_count(session) == 0


def test_staff_add_refuses_a_bad_email(cli, session):
    result = cli("staff", "add", "not-an-address", "--name", "Eva", input=PASSWORD)
    assert result.exit_code == 1
    assert "not an e-mail address" in result.stderr


def test_staff_add_on_a_terminal_asks_twice(cli, session, monkeypatch):
    answers = iter([PASSWORD, PASSWORD])
    monkeypatch.setattr(app.cli.staff, "stdin_is_terminal", lambda: True)
    monkeypatch.setattr(app.cli.staff.getpass, "getpass", lambda prompt: next(answers))
    result = cli("staff", "add", "eva@otys.example", "--name", "Eva")
    assert result.exit_code == 0, result.output
    assert check_password(find_staff(session, "eva@otys.example"), PASSWORD)


def test_staff_add_on_a_terminal_refuses_differing_passwords(cli, session, monkeypatch):
    answers = iter([PASSWORD, PASSWORD + "x"])
    monkeypatch.setattr(app.cli.staff, "stdin_is_terminal", lambda: True)
    monkeypatch.setattr(app.cli.staff.getpass, "getpass", lambda prompt: next(answers))
    result = cli("staff", "add", "eva@otys.example", "--name", "Eva")
    assert result.exit_code == 1
    assert "differ" in result.stderr
    assert staff_count(session) == 0


def test_staff_token_prints_only_a_token_that_opens_the_api(cli, client, session):
    cli("staff", "add", "eva@otys.example", "--name", "Eva", input=PASSWORD)
    result = cli("staff", "token", "EVA@otys.example")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and result.stdout == lines[0] + "\n"
    token = lines[0]
    assert len(token) >= 32 and " " not in token
    response = client.get("/api/tickets", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["tickets"] == []
    session.expire_all()
    stored = session.scalars(select(ApiToken.token_hash)).all()
    assert len(stored) == 1 and token not in stored[0]


def test_every_staff_token_call_gives_a_new_valid_token(cli, session):
    cli("staff", "add", "eva@otys.example", "--name", "Eva", input=PASSWORD)
    first = cli("staff", "token", "eva@otys.example").stdout.strip()
    second = cli("staff", "token", "eva@otys.example").stdout.strip()
    assert first != second
    session.expire_all()
    assert staff_for_token(session, first).email == "eva@otys.example"
    assert staff_for_token(session, second).email == "eva@otys.example"


def test_staff_token_for_an_unknown_or_inactive_account_fails(cli, session):
    unknown = cli("staff", "token", "nobody@otys.example")
    assert (unknown.exit_code, unknown.stdout) == (1, "")
    assert "no active staff account nobody@otys.example" in unknown.stderr
    cli("staff", "add", "eva@otys.example", "--name", "Eva", input=PASSWORD)
    account = find_staff(session, "eva@otys.example")
    account.active = False
    session.commit()
    inactive = cli("staff", "token", "eva@otys.example")
    assert (inactive.exit_code, inactive.stdout) == (1, "")


def test_staff_commands_work_on_a_fresh_empty_database(cli, tmp_path):
    fresh = {"IVR_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh' / 'ivr.sqlite3'}"}
    added = cli("staff", "add", "eva@otys.example", "--name", "Eva", input=PASSWORD, env=fresh)
    assert added.exit_code == 0, added.output
    token = cli("staff", "token", "eva@otys.example", env=fresh)
    assert token.exit_code == 0, token.output
    assert "staff_users" in inspect(db.engine).get_table_names()
    assert str(db.engine.url).endswith("fresh/ivr.sqlite3")
    with db.session_factory() as fresh_session:
        assert staff_for_token(fresh_session, token.stdout.strip()).email == "eva@otys.example"


def test_staff_commands_write_the_audit_trail(cli, session):
    cli(
        "staff",
        "add",
        "eva@otys.example",
        "--name",
        "Eva",
        "--phone",
        "06-12345678",
        input=PASSWORD,
    )
    cli("staff", "token", "eva@otys.example")
    cli("staff", "deactivate", "eva@otys.example")
    changes = recent_changes(session, action_prefix="staff_")
    assert [change.action for change in changes] == [
        "staff_deactivated",
        "staff_token_issued",
        "staff_added",
    ]
    assert all(change.actor.startswith("cli:") for change in changes)
    assert changes[0].detail == "Eva <eva@otys.example>: 1 token(s) revoked"
    assert changes[2].detail == "Eva <eva@otys.example>: agent, phone +31612345678"


def test_staff_deactivate_keeps_the_last_active_admin(cli, session):
    cli("staff", "add", "ada@otys.example", "--name", "Ada", "--role", "admin", input=PASSWORD)
    refused = cli("staff", "deactivate", "ada@otys.example")
    assert refused.exit_code == 1
    assert "ada@otys.example is the last active admin" in refused.stderr
    session.expire_all()
    assert find_staff(session, "ada@otys.example").active
    cli("staff", "add", "bob@otys.example", "--name", "Bob", "--role", "admin", input=PASSWORD)
    assert cli("staff", "deactivate", "ada@otys.example").exit_code == 0


def test_a_password_the_sign_in_form_cannot_take_is_refused(cli, session):
    result = cli("staff", "add", "eva@otys.example", "--name", "Eva", input="x" * 201)
    assert result.exit_code == 1
    assert "at most 200 characters" in result.stderr
    assert staff_count(session) == 0
