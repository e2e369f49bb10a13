"""Words for people: no code of ours reaches a dashboard page; one home for the labels."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from helpers import EMERGENCY_NUMBER
from sqlalchemy import select
from support_helpers import make_staff, sign_in

from bench.screenshots import ADMIN, PASSWORD, dashboard_pages, seed
from tickets import labels
from tickets.models import Contact, ContactPhone, Organization, Ticket

# Codes that must never be read on a page: reasons, roles, outcomes, statuses in a change,
# Twilio's addresses.
CODES = re.compile(
    r"urgent_bug|super_user|key_user|abandoned_|closed_no_message|in_progress|"
    r"waiting_for_customer|with_product_team|api\.twilio\.com"
)


def visible_text(html: str) -> str:
    """The words a person reads: no tags, attributes, scripts or styles."""
    html = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", html)
    html = re.sub(r"(?s)<select\b.*?</select>", " ", html)  # option values are not shown
    return unescape(re.sub(r"(?s)<[^>]+>", " ", html))


@pytest.mark.parametrize(
    ("kind", "detail", "shown"),
    [
        ("triage", "urgent_bug", "Urgent bug"),
        ("triage", "unknown", "no usable choice"),
        ("call_ended", "abandoned_before_triage, 1 s", "Caller hung up before triage, after 1 s"),
        ("call_ended", "closed_no_message, 20 s", "Line closed, no message left, after 20 s"),
        ("status", "in_progress → waiting_for_customer; asked: waar?", None),
        ("recognised", "Petra (super_user) by caller ID", "Petra (Super user) by caller ID"),
        (
            "voicemail",
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE0123456789abcdef0123456789abcdef",
            "recording RE0123…cdef",
        ),
    ],
)
def test_timeline_details_are_read_in_words(kind, detail, shown):
    text = labels.event_detail(kind, detail)
    if shown is not None:
        assert text == shown
    assert not CODES.search(text)


def test_a_status_change_keeps_what_was_asked():
    assert labels.event_detail("status", "in_progress → waiting_for_customer; asked: waar?") == (
        "In progress → Waiting for the customer; asked: waar?"
    )


def test_no_dashboard_page_shows_a_code(app, client, session):
    showcase = seed(app)
    sign_in(client, ADMIN, PASSWORD)
    for name, path in dashboard_pages(showcase).items():
        response = client.get(path)
        assert response.status_code == 200, name
        found = CODES.findall(visible_text(response.get_data(as_text=True)))
        assert found == [], f"{name}: {sorted(set(found))}"


def test_the_command_line_is_not_where_the_pages_send_people(client, session):
    login = client.get("/support/login").get_data(as_text=True)
    assert "ivr staff" not in login and "Staff page" in login
    make_staff(session, email="admin@otys.test", name="Ada Admin", role="admin")
    sign_in(client, "admin@otys.test")
    oncall = visible_text(client.get("/support/oncall").get_data(as_text=True))
    assert "ivr oncall" not in oncall and "ivr staff" not in oncall
    assert "Staff page" in oncall and "add an override" in oncall


def test_there_is_a_favicon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    icon = client.get(response.location)
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"


def test_a_ticket_s_reason_follows_its_most_serious_call(phone, session, clock):
    acme = Organization(name="Acme")
    for index, number in enumerate(("+31611110001", "+31611110002")):
        contact = Contact(
            organization=acme, name=f"Caller {index}", email=f"{index}@acme.test", role="key_user"
        )
        contact.phones.append(ContactPhone(number=number))
    session.add(acme)
    session.commit()
    first = phone(to=EMERGENCY_NUMBER, from_="+31611110001")
    first.press(first.start(), "2")  # urgent bug
    first.hang_up()
    clock.now += timedelta(minutes=5)
    second = phone(to=EMERGENCY_NUMBER, from_="+31611110002")
    second.press(second.start(), "1")  # outage: joins the open ticket
    second.hang_up()
    third = phone(to=EMERGENCY_NUMBER, from_="+31611110001")
    third.press(third.start(), "2")  # an urgent bug again does not make it less
    session.expire_all()
    [ticket] = session.scalars(select(Ticket)).all()
    assert [call.reason for call in ticket.calls] == ["urgent_bug", "outage", "urgent_bug"]
    assert ticket.reason == "outage"
