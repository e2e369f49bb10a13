"""Whom the line texts: only callers verified on their call, on a mobile in an allowed country,
within the caps per number and per hour (SMS pumping).

Messages go through the twilio REST client to the local stand-in; the clock is moved, never slept.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers import EMERGENCY_NUMBER, MONDAY_MORNING
from resilience_helpers import SUPER_PHONE, SUPER_PIN, make_directory
from sqlalchemy import select

from bench.standin import TwilioStandIn
from ivr.messaging.sender import tick
from tickets.lifecycle import acknowledge_ticket, change_status
from tickets.models import Contact, ContactPhone, Organization, StaffUser, Ticket, TicketEvent

ACCOUNT_SID = "AC" + "7" * 32
SMS_FROM = "+31612340000"
# Satellite, non-geographic and far-away mobiles, as in the review (issue 19, finding 3).
STRANGERS = (
    "+881612345678",
    "+881612345679",
    "+2348031234567",
    "+2348031234568",
    "+8801712345678",
    "+79161234567",
    "+22670123456",
    "+9647712345678",
    "+9647712345679",
    "+870773123456",
)
GERMAN_MOBILE = "+4915112345678"
BELGIAN_MOBILE = "+32470123456"


@pytest.fixture(scope="module")
def twilio():
    from helpers import AUTH_TOKEN

    standin = TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    yield standin
    standin.stop()


@pytest.fixture
def caps() -> dict:
    return {}


@pytest.fixture
def settings_overrides(twilio, caps):
    twilio.sent.clear()
    twilio.fail_next = twilio.requests = 0
    return {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_api_url": twilio.url,
        "paging.sms_from": SMS_FROM,
        **caps,
    }


@pytest.fixture
def directory(session, clock):
    return make_directory(session)


@pytest.fixture
def anna(session):
    staff = StaffUser(email="anna@otys.test", name="Anna Jansen", password_hash="x")
    session.add(staff)
    session.commit()
    return staff


def contact_on(session, number: str, organization: str) -> Contact:
    """Add a super user with this mobile number, in an organisation of their own."""
    person = Contact(
        organization=Organization(name=organization),
        name=f"Super user of {organization}",
        email=f"su@{organization.lower().replace(' ', '-')}.example",
        role="super_user",
    )
    person.phones.append(ContactPhone(number=number))
    session.add(person)
    session.commit()
    return person


def unverified_call(phone, caller: str | None, *, key: str = "1"):
    """Stay silent at every PIN prompt, go on unverified with `key`, and hang up."""
    call = phone(to=EMERGENCY_NUMBER, from_=caller)
    root = call.start()
    while root.find("Gather") is not None and "/emergency/pin" in root.find("Gather").get("action"):
        root = call.silence(root)
    root = call.press(root, key)
    call.hang_up(duration="20")
    return root


def known_call(phone, caller: str, *, key: str = "1") -> None:
    """A caller recognised by number chooses a reason and hangs up while the engineers ring."""
    call = phone(to=EMERGENCY_NUMBER, from_=caller)
    call.press(call.start(), key)
    call.hang_up(duration="30")


def pin_call(phone, caller: str, pin: str) -> None:
    call = phone(to=EMERGENCY_NUMBER, from_=caller)
    root = call.press(call.start(), f"{pin}")
    call.press(root, "2")
    call.hang_up(duration="30")


def texts_to(twilio, numbers) -> list:
    return [sms for sms in twilio.sent if sms.to in set(numbers)]


def not_texted(session) -> list[str]:
    session.expire_all()
    query = select(TicketEvent.detail).where(TicketEvent.kind == "caller_not_texted")
    return list(session.scalars(query.order_by(TicketEvent.id)))


def test_unverified_calls_from_far_away_mobiles_get_no_sms(app, phone, session, directory, twilio):
    for number in STRANGERS:
        unverified_call(phone, number)
    tick(app)
    assert session.query(Ticket).count() == len(STRANGERS)
    assert texts_to(twilio, STRANGERS) == []
    assert set(not_texted(session)) == {"not verified on this call"}


def test_out_of_hours_an_unverified_caller_is_not_texted_either(
    app, phone, session, clock, directory, twilio
):
    clock.now = MONDAY_MORNING.replace(hour=22)
    call = phone(to=EMERGENCY_NUMBER, from_="+31622222222")
    root = call.start()
    for _ in range(3):
        root = call.silence(root)
    root = call.press(root, "1")
    assert root.find("Record") is not None
    call.post(root.find("Record").get("action"), RecordingUrl="https://api.twilio.com/r/RE1")
    call.hang_up()
    tick(app)
    assert texts_to(twilio, ["+31622222222"]) == []


def test_acknowledging_and_closing_a_junk_ticket_texts_nobody(
    app, phone, session, directory, anna, twilio
):
    unverified_call(phone, "+31622222222")
    with app.app_context():  # as in a dashboard request
        ticket = session.scalars(select(Ticket)).one()
        acknowledge_ticket(session, ticket=ticket, staff=anna)
        change_status(session, ticket=ticket, staff=anna, status="resolved")
    tick(app)
    assert texts_to(twilio, ["+31622222222"]) == []


def test_a_caller_recognised_by_number_or_pin_gets_the_ticket_number(
    app, phone, session, directory, twilio
):
    known_call(phone, SUPER_PHONE)
    pin_call(phone, BELGIAN_MOBILE, SUPER_PIN)
    tick(app)
    number = session.scalars(select(Ticket)).one().number
    assert [number in sms.body for sms in texts_to(twilio, [SUPER_PHONE])] == [True]
    assert [number in sms.body for sms in texts_to(twilio, [BELGIAN_MOBILE])] == [True]


def test_a_verified_caller_outside_the_allowed_countries_is_not_texted(
    app, phone, session, clock, twilio
):
    contact_on(session, GERMAN_MOBILE, "Berlin GmbH")
    known_call(phone, GERMAN_MOBILE)
    tick(app)
    assert texts_to(twilio, [GERMAN_MOBILE]) == []
    assert not_texted(session) == ["DE is not among paging.caller_sms_countries"]


@pytest.mark.parametrize(
    "caps", [{"paging.caller_sms_countries": ["NL", "BE", "DE"]}], ids=["with-DE"]
)
def test_a_country_added_to_the_allow_list_is_texted(app, phone, session, clock, twilio):
    contact_on(session, GERMAN_MOBILE, "Berlin GmbH")
    known_call(phone, GERMAN_MOBILE)
    tick(app)
    assert len(texts_to(twilio, [GERMAN_MOBILE])) == 1


def test_a_satellite_number_is_never_texted_even_from_a_directory_contact(
    app, phone, session, clock, twilio
):
    contact_on(session, "+881612345678", "Offshore BV")
    known_call(phone, "+881612345678")
    tick(app)
    assert texts_to(twilio, ["+881612345678"]) == []
    assert not_texted(session) == ["a satellite or non-geographic number"]


@pytest.mark.parametrize("caps", [{"paging.caller_sms_per_number_per_day": 2}], ids=["2-a-day"])
def test_one_number_gets_at_most_the_daily_cap(
    app, phone, session, clock, directory, anna, twilio, settings
):
    known_call(phone, SUPER_PHONE)
    with app.app_context():  # as in a dashboard request
        ticket = session.scalars(select(Ticket)).one()
        acknowledge_ticket(session, ticket=ticket, staff=anna)
        change_status(session, ticket=ticket, staff=anna, status="resolved")
    tick(app)
    assert [sms.body.split(":")[0] for sms in texts_to(twilio, [SUPER_PHONE])] == [
        "OTYS support",
        "OTYS support",
    ]
    assert not any("opgelost" in sms.body for sms in twilio.sent)
    clock.now += timedelta(hours=2)
    known_call(phone, SUPER_PHONE)  # a new ticket: the first one is resolved
    tick(app)
    assert len(texts_to(twilio, [SUPER_PHONE])) == 2
    assert not_texted(session)[-1] == "the cap of 2 texts a day to one number is reached"
    clock.now += timedelta(days=1)
    known_call(phone, SUPER_PHONE)
    tick(app)
    assert len(texts_to(twilio, [SUPER_PHONE])) == 3


@pytest.mark.parametrize("caps", [{"paging.caller_sms_per_hour": 3}], ids=["3-an-hour"])
def test_the_line_texts_callers_at_most_the_hourly_cap(app, phone, session, clock, twilio):
    callers = [f"+3161111000{index}" for index in range(5)]
    for index, number in enumerate(callers):
        contact_on(session, number, f"Client {index}")
    for number in callers[:4]:
        known_call(phone, number)
        clock.now += timedelta(minutes=1)
    tick(app)
    assert [sms.to for sms in texts_to(twilio, callers)] == callers[:3]
    assert not_texted(session) == ["the cap of 3 caller texts an hour is reached"]
    clock.now += timedelta(hours=1)
    known_call(phone, callers[4])
    tick(app)
    assert [sms.to for sms in texts_to(twilio, callers)] == callers[:3] + [callers[4]]
