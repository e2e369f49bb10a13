import pytest
from helpers import SECRET_KEY
from sqlalchemy import func, select, text

import tickets.directory as directory
from tickets.directory import (
    DirectoryFileError,
    decode_directory_file,
    find_contact_by_phone,
    find_contact_by_pin,
    hash_pin,
    import_directory,
)
from tickets.models import Contact, ContactPhone, Organization

HEADER = "organization,name,email,role,phone,pin\n"


def run_import(session, body: str, header: str = HEADER):
    result = import_directory(session, header + body, secret=SECRET_KEY)
    session.commit()
    return result


def contact(session, email: str) -> Contact | None:
    session.expire_all()
    return session.scalar(select(Contact).where(Contact.email == email))


def numbers(session, email: str) -> set[str]:
    return {phone.number for phone in contact(session, email).phones}


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_import_adds_contacts_with_phones_normalised_to_e164(session):
    result = run_import(
        session,
        "Acme,Anna Smit,anna@acme.example,super_user,06-12345678,\n"
        "Acme,Bert Kok,bert@acme.example,key_user,+31 6 8765 4321,\n"
        "Acme,Cor Bos,cor@acme.example,user,0031611223344,\n"
        "Acme,Dina Vos,dina@acme.example,key_user,(06) 2233 4455; +31 (0)6 33445566,\n",
    )
    assert (result.added, result.updated, result.unchanged, result.rejected) == (4, 0, 0, [])
    assert numbers(session, "anna@acme.example") == {"+31612345678"}
    assert numbers(session, "bert@acme.example") == {"+31687654321"}
    assert numbers(session, "cor@acme.example") == {"+31611223344"}
    assert numbers(session, "dina@acme.example") == {"+31622334455", "+31633445566"}
    assert find_contact_by_phone(session, "+31612345678").role == "super_user"


def test_one_number_in_two_notations_is_stored_once(session):
    run_import(session, "Acme,Anna,anna@acme.example,user,06-12345678;+31 6 1234 5678,\n")
    assert count(session, ContactPhone) == 1


def test_organisation_is_created_once_on_first_sight_by_name(session):
    run_import(
        session,
        "Acme BV,Anna,anna@acme.example,user,,\n"
        "ACME  bv,Bert,bert@acme.example,user,,\n"
        "Other,Cor,cor@acme.example,user,,\n",
    )
    assert session.scalars(select(Organization.name).order_by(Organization.name)).all() == [
        "Acme BV",
        "Other",
    ]
    assert contact(session, "bert@acme.example").organization.name == "Acme BV"


def test_reimport_of_the_same_file_changes_nothing(session):
    body = (
        "Acme,Anna,anna@acme.example,super_user,06-12345678,123456\n"
        "Acme,Bert,bert@acme.example,user,06-87654321,\n"
    )
    run_import(session, body)
    before = session.execute(text("SELECT * FROM contacts ORDER BY id")).all()
    result = run_import(session, body)
    assert (result.added, result.updated, result.unchanged, result.rejected) == (0, 0, 2, [])
    assert session.execute(text("SELECT * FROM contacts ORDER BY id")).all() == before
    assert (count(session, Contact), count(session, ContactPhone)) == (2, 2)


def test_reimport_updates_by_email_ignoring_case(session):
    run_import(session, "Acme,Anna,anna@acme.example,user,06-12345678,\n")
    result = run_import(
        session, "Other,Anna de Wit,ANNA@Acme.Example,key_user,06-87654321;06-11223344,\n"
    )
    assert (result.added, result.updated, result.unchanged) == (0, 1, 0)
    assert count(session, Contact) == 1
    anna = contact(session, "anna@acme.example")
    assert (anna.name, anna.role, anna.organization.name) == ("Anna de Wit", "key_user", "Other")
    assert numbers(session, "anna@acme.example") == {"+31687654321", "+31611223344"}
    assert find_contact_by_phone(session, "+31612345678") is None


def test_reimport_keeping_one_number_and_adding_another(session):
    run_import(session, "Acme,Anna,anna@acme.example,user,06-12345678,\n")
    run_import(session, "Acme,Anna,anna@acme.example,user,06-87654321;06-12345678,\n")
    assert numbers(session, "anna@acme.example") == {"+31612345678", "+31687654321"}


def test_reimport_without_phone_removes_the_numbers(session):
    run_import(session, "Acme,Anna,anna@acme.example,key_user,06-12345678,\n")
    result = run_import(session, "Acme,Anna,anna@acme.example,key_user,,\n")
    assert result.updated == 1
    assert numbers(session, "anna@acme.example") == set()


def test_empty_pin_on_reimport_keeps_the_pin(session):
    run_import(session, "Acme,Anna,anna@acme.example,key_user,,24681012\n")
    result = run_import(session, "Acme,Anna,anna@acme.example,key_user,,\n")
    assert result.unchanged == 1
    found = find_contact_by_pin(session, "24681012", secret=SECRET_KEY)
    assert found is not None and found.email == "anna@acme.example"


def test_new_pin_on_reimport_replaces_the_old_one(session):
    run_import(session, "Acme,Anna,anna@acme.example,key_user,,111111\n")
    result = run_import(session, "Acme,Anna,anna@acme.example,key_user,,222222\n")
    assert result.updated == 1
    assert find_contact_by_pin(session, "111111", secret=SECRET_KEY) is None
    assert find_contact_by_pin(session, "222222", secret=SECRET_KEY).email == "anna@acme.example"


def test_pin_is_never_stored_in_plain_text(session):
    run_import(session, "Acme,Anna,anna@acme.example,key_user,06-12345678,97531086\n")
    for table in ("contacts", "contact_phones", "organizations"):
        for row in session.execute(text(f"SELECT * FROM {table}")).all():  # noqa: S608
            assert not any("97531086" in str(value) for value in row), (table, row)
    assert contact(session, "anna@acme.example").pin_hash == hash_pin("97531086", secret=SECRET_KEY)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("Acme,Anna,anna@acme.example,user,06-123,", "bad phone number '06-123'"),
        ("Acme,Anna,anna@acme.example,user,06-12345678;bellen,", "bad phone number 'bellen'"),
        ("Acme,Anna,anna@acme.example,admin,,", "unknown role 'admin'"),
        ("Acme,Anna,anna@acme.example,key_user,,12345", "PIN too short (5 digits"),
        ("Acme,Anna,anna@acme.example,key_user,,123456789", "PIN too long (9 digits"),
        ("Acme,Anna,anna@acme.example,key_user,,12a456", "PIN must be digits only"),
        ("Acme,Anna,anna@acme.example,key_user,,１２３４５６", "PIN must be digits only"),
        (",Anna,anna@acme.example,user,,", "missing value for organization"),
        ("Acme,,anna@acme.example,user,,", "missing value for name"),
        ("Acme,Anna,anna@acme.example,,,", "missing value for role"),
        ("Acme,Anna,anna.acme.example,user,,", "not an e-mail address"),
        ("Acme,Anna,anna@acme.example,user,,,surprise", "more values than the header"),
    ],
)
def test_rejected_row_says_why_and_adds_nothing(session, row, reason):
    result = run_import(session, f"Acme,Good,good@acme.example,user,,\n{row}\n")
    assert (result.added, len(result.rejected)) == (1, 1)
    rejected = result.rejected[0]
    assert rejected.line == 3
    assert reason in rejected.reason
    assert count(session, Contact) == 1


def test_row_without_email_is_rejected_and_reported_without_one(session):
    result = run_import(session, "Acme,Anna,,user,,\n")
    assert [(r.line, r.email, r.reason) for r in result.rejected] == [
        (2, "", "missing value for email")
    ]
    assert count(session, Organization) == 0


def test_every_reason_of_a_row_is_reported(session):
    result = run_import(session, "Acme,Anna,anna@acme.example,boss,06-1,12\n")
    assert result.rejected[0].reasons == (
        "unknown role 'boss' (use user, key_user, super_user)",
        "bad phone number '06-1'",
        "PIN too short (2 digits; 6 to 8 needed)",
    )


def test_duplicate_email_in_the_file_rejects_the_later_row(session):
    result = run_import(
        session,
        "Acme,Anna,anna@acme.example,user,06-12345678,\n"
        "Acme,Anna Again,Anna@acme.example,key_user,06-87654321,\n",
    )
    assert result.added == 1
    assert [(r.line, r.reason) for r in result.rejected] == [
        (3, "duplicate e-mail address (also on line 2)")
    ]
    assert contact(session, "anna@acme.example").role == "user"


def test_pin_given_twice_in_the_file_rejects_the_later_row(session):
    result = run_import(
        session,
        "Acme,Anna,anna@acme.example,key_user,,123456\nAcme,Bert,bert@acme.example,key_user,,123456\n",
    )
    assert [(r.line, r.email, r.reason) for r in result.rejected] == [
        (3, "bert@acme.example", "PIN already used on line 2 of this file")
    ]
    assert contact(session, "bert@acme.example") is None


def test_pin_of_another_contact_is_rejected_and_theirs_stays(session):
    run_import(session, "Acme,Anna,anna@acme.example,key_user,,123456\n")
    result = run_import(session, "Acme,Bert,bert@acme.example,key_user,,123456\n")
    assert [r.reason for r in result.rejected] == ["PIN already taken by another contact"]
    assert find_contact_by_pin(session, "123456", secret=SECRET_KEY).email == "anna@acme.example"


def test_rejected_update_leaves_the_contact_as_it_was(session):
    run_import(session, "Acme,Anna,anna@acme.example,key_user,06-12345678,111111\n")
    result = run_import(session, "Other,Anne,anna@acme.example,super_user,06-87654321;x,222222\n")
    assert (result.updated, len(result.rejected)) == (0, 1)
    anna = contact(session, "anna@acme.example")
    assert (anna.name, anna.role, anna.organization.name) == ("Anna", "key_user", "Acme")
    assert numbers(session, "anna@acme.example") == {"+31612345678"}
    assert find_contact_by_pin(session, "111111", secret=SECRET_KEY) is not None
    assert count(session, Organization) == 1


def test_conflict_found_only_by_the_database_rejects_that_row_alone(session, monkeypatch):
    run_import(session, "Acme,Anna,anna@acme.example,key_user,,123456\n")
    # As if another import took the PIN between validating and applying.
    monkeypatch.setattr(directory, "_pin_owners", lambda _session, _hashes: {})
    result = run_import(
        session,
        "Acme,Bert,bert@acme.example,key_user,06-12345678,\n"
        "New Org,Cor,cor@acme.example,key_user,06-87654321,123456\n"
        "Acme,Dirk,dirk@acme.example,user,,\n",
    )
    assert result.added == 2
    assert [(r.line, r.email) for r in result.rejected] == [(3, "cor@acme.example")]
    assert "conflicts" in result.rejected[0].reason
    assert contact(session, "cor@acme.example") is None
    assert contact(session, "dirk@acme.example") is not None
    assert session.scalar(select(Organization).where(Organization.name == "New Org")) is None
    assert find_contact_by_pin(session, "123456", secret=SECRET_KEY).email == "anna@acme.example"


def test_bom_crlf_whitespace_blank_lines_and_header_case_are_handled(session):
    raw = (
        "\ufeff Organization , NAME,E-mail,Role,phone,PIN\r\n"
        "\r\n"
        "  Acme  ,  Anna   Smit ,  anna@acme.example , Super User ,  06-12345678 , 123456 \r\n"
        ",,,,,\r\n"
        "Acme,Bert,bert@acme.example,key-user,,\r\n"
        "Acme,Cor,cor@acme.example,user,06-1,\r\n"
    ).encode()
    result = import_directory(session, decode_directory_file(raw), secret=SECRET_KEY)
    session.commit()
    assert result.added == 2
    assert [r.line for r in result.rejected] == [6]
    anna = contact(session, "anna@acme.example")
    assert (anna.name, anna.role, anna.organization.name) == ("Anna Smit", "super_user", "Acme")
    assert contact(session, "bert@acme.example").role == "key_user"
    assert find_contact_by_pin(session, "123456", secret=SECRET_KEY) is not None


def test_semicolon_separated_file_from_dutch_excel(session):
    raw = (
        "organization;name;email;role;phone;pin\n"
        'Müller & Zn;Jürgen Müller;jurgen@muller.example;key_user;"06-12345678;06-87654321";\n'
    ).encode("cp1252")
    result = import_directory(session, decode_directory_file(raw), secret=SECRET_KEY)
    session.commit()
    assert result.added == 1
    jurgen = contact(session, "jurgen@muller.example")
    assert (jurgen.name, jurgen.organization.name) == ("Jürgen Müller", "Müller & Zn")
    assert numbers(session, "jurgen@muller.example") == {"+31612345678", "+31687654321"}


def test_extra_columns_are_ignored(session):
    result = run_import(
        session,
        "Acme,Anna,anna@acme.example,user,,,note\n",
        header="organization,name,email,role,phone,pin,remarks\n",
    )
    assert result.added == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("\n\n  \n", "empty"),
        ("organization,name,email,role,phone\nAcme,A,a@a.example,user,\n", "lacks the column pin"),
        ("name,email\n", "lacks the columns organization, role, phone, pin"),
        ("organization,name,email,role,phone,pin,pin\n", "column 'pin' twice"),
    ],
)
def test_file_with_a_bad_header_is_refused_whole(session, content, message):
    with pytest.raises(DirectoryFileError, match=message):
        import_directory(session, content, secret=SECRET_KEY)
    assert count(session, Contact) == 0


def test_cli_import_prints_counts_and_each_rejected_row(cli, session, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(
        HEADER + "Acme,Anna,anna@acme.example,super_user,06-12345678,123456\n"
        "Acme,Bert,bert@acme.example,manager,06-87654321,\n"
    )
    result = cli("directory", "import", str(path))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "people.csv: 1 added, 0 updated, 0 unchanged, 1 rejected"
    assert lines[1] == (
        "  rejected line 3 (bert@acme.example): unknown role 'manager' "
        "(use user, key_user, super_user)"
    )
    again = cli("directory", "import", str(path))
    assert again.stdout.splitlines()[0] == (
        "people.csv: 0 added, 0 updated, 1 unchanged, 1 rejected"
    )
    assert "123456" not in result.output + again.output
    assert find_contact_by_phone(session, "+31612345678").email == "anna@acme.example"


def test_cli_import_refuses_a_wrong_header(cli, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("naam,email\nAnna,anna@acme.example\n")
    result = cli("directory", "import", str(path))
    assert result.exit_code == 1
    assert "lacks the columns" in result.stderr
    assert result.stdout == ""


def test_cli_import_refuses_an_unreadable_file(cli, tmp_path):
    result = cli("directory", "import", str(tmp_path / "missing.csv"))
    assert result.exit_code == 1
    assert "cannot read" in result.stderr


def test_demo_loads_the_directory_once_and_the_demo_account(cli, session):
    first = cli("demo", env={"IVR_DEMO_PASSWORD": "demo-password-123"})
    assert first.exit_code == 0, first.output
    assert "http://127.0.0.1:8000" in first.stdout
    assert "demo@otys.example" in first.stdout
    assert ".venv/bin/ivr call --to emergency" in first.stdout
    second = cli("demo", env={"IVR_DEMO_PASSWORD": "demo-password-123"})
    assert "0 added, 0 updated" in second.stdout
    assert " 0 rejected" in second.stdout
    super_user = find_contact_by_phone(session, "+31612345678")
    assert (super_user.role, super_user.organization.name) == ("super_user", "Demo Uitzendbureau")
    assert find_contact_by_phone(session, "+31687654321").role == "user"
    key_user = find_contact_by_pin(session, "246810", secret=SECRET_KEY)
    assert key_user.role == "key_user" and key_user.phones == []
    roles = session.execute(
        select(Organization.name, Contact.role).join(Contact.organization)
    ).all()
    for organization in {name for name, _role in roles}:
        assert {role for name, role in roles if name == organization} == {
            "user",
            "key_user",
            "super_user",
        }
    from tickets.staff import check_password, find_staff

    account = find_staff(session, "demo@otys.example")
    assert account.role == "admin" and check_password(account, "demo-password-123")


def test_demo_says_at_night_that_the_emergency_line_takes_voicemail_and_how_to_open_it(settings):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from app.cli.demo import describe_hours_now

    # Saturday 05:00 in Amsterdam: what a new user saw, straight to voicemail.
    night = datetime(2026, 12, 12, 5, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
    said = describe_hours_now(settings, now=night, override="auto")
    assert "CLOSED (Sat 05:00 in Europe/Amsterdam; it opens Mon 14 Dec 08:30)" in said
    assert "takes a voicemail instead of ringing an engineer" in said
    assert ".venv/bin/ivr hours set open" in said


def test_demo_says_when_the_open_emergency_line_closes_and_when_it_is_forced(settings):
    from helpers import MONDAY_MORNING

    from app.cli.demo import describe_hours_now

    said = describe_hours_now(settings, now=MONDAY_MORNING, override="auto")
    assert "emergency line open (Mon 10:00 in Europe/Amsterdam, until 17:30)" in said
    forced = describe_hours_now(settings, now=MONDAY_MORNING, override="closed")
    assert "emergency line CLOSED (Mon 10:00 in Europe/Amsterdam), forced with" in forced
    assert "ivr hours set auto" in forced


def test_demo_banner_follows_the_hours_override(cli):
    assert cli("hours", "set", "open").exit_code == 0
    result = cli("demo")
    assert result.exit_code == 0, result.output
    assert "emergency line OPEN" in result.stdout
    assert "forced with `ivr hours set open`" in result.stdout


def test_demo_without_password_creates_no_staff_account(cli, session):
    from tickets.staff import find_staff

    result = cli("demo")
    assert result.exit_code == 0, result.output
    assert find_staff(session, "demo@otys.example") is None


def test_demo_callers_are_recognised_by_the_emergency_line(clock, cli, phone, session):
    from helpers import EMERGENCY_NUMBER

    from tickets.models import Ticket, TicketCall

    assert cli("demo").exit_code == 0
    super_user = phone(to=EMERGENCY_NUMBER, from_="+31612345678")
    super_user.start()
    by_pin = phone(to=EMERGENCY_NUMBER, from_="anonymous")
    by_pin.press(by_pin.start(), "246810")
    normal_user = phone(to=EMERGENCY_NUMBER, from_="+31687654321")
    normal_user.start()
    session.expire_all()
    # Both entitled callers are of Demo Uitzendbureau: the second call joins the open ticket.
    ticket = session.scalars(select(Ticket)).one()
    assert (ticket.organization.name, ticket.priority) == ("Demo Uitzendbureau", "urgent")
    assert set(session.scalars(select(TicketCall.sid))) == {super_user.sid, by_pin.sid}
