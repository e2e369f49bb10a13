from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tickets.models import Contact, ContactPhone, Organization, Ticket, TicketCall, TicketEvent
from tickets.urgent import opening, outcomes, timeline

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def make_contact(session, *, org="Acme BV", name="Sanne Visser", role="super_user", email=None):
    organization = session.scalar(select(Organization).where(Organization.name == org))
    if organization is None:
        organization = Organization(name=org)
        session.add(organization)
    contact = Contact(
        organization=organization,
        name=name,
        email=email or f"{name.split()[0].lower()}@{org.split()[0].lower()}.example",
        role=role,
    )
    contact.phones.append(ContactPhone(number="+31612345678"))
    session.add(contact)
    session.commit()
    return contact


def open_ticket(session, contact, sid, *, now=T0, window=30, in_hours=True):
    call = opening.open_ticket(
        session,
        arrival=opening.recognised(contact, "caller_id"),
        call_sid=sid,
        line="emergency",
        caller="+31612345678",
        contact=contact,
        in_hours=in_hours,
        repeat_window_minutes=window,
        at=now,
    )
    session.commit()  # the webhook that opens it commits it at once
    return call


def count(session, model):
    return session.scalar(select(func.count()).select_from(model))


def kinds(session, ticket_id):
    return [
        e.kind
        for e in session.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
        )
    ]


def test_open_creates_an_urgent_phone_ticket_with_its_call_and_timeline(session):
    contact = make_contact(session)
    call = open_ticket(session, contact, "CA1", in_hours=False)
    ticket = call.ticket
    assert (ticket.priority, ticket.source, ticket.status, ticket.category) == (
        "urgent",
        "phone",
        "new",
        "bug",
    )
    assert ticket.contact_id == contact.id
    assert ticket.organization_id == contact.organization_id
    assert ticket.caller == "+31612345678"
    assert ticket.in_hours is False
    assert ticket.created_at == T0
    assert (call.sid, call.line, call.outcome) == ("CA1", "emergency", "in_progress")
    assert kinds(session, ticket.id) == ["ticket_opened", "recognised"]


def test_opening_twice_for_one_call_gives_one_ticket_one_call_one_set_of_events(session):
    contact = make_contact(session)
    first = open_ticket(session, contact, "CA1")
    again = open_ticket(session, contact, "CA1")
    assert again.id == first.id
    assert count(session, Ticket) == 1
    assert count(session, TicketCall) == 1
    assert kinds(session, first.ticket_id) == ["ticket_opened", "recognised"]


def test_a_lost_race_on_the_call_sid_returns_the_winning_ticket(session, monkeypatch):
    contact = make_contact(session)
    winner = open_ticket(session, contact, "CA1")
    real = opening.find_ticket_call
    lookups = []

    def racing_lookup(s, sid):
        # The first lookup misses, as if the other request had not committed yet.
        lookups.append(sid)
        return None if len(lookups) == 1 else real(s, sid)

    monkeypatch.setattr(opening, "find_ticket_call", racing_lookup)
    loser = open_ticket(session, contact, "CA1", window=0)
    assert len(lookups) == 2
    assert loser.id == winner.id
    assert count(session, Ticket) == 1
    assert count(session, TicketCall) == 1


def test_second_call_of_the_organisation_joins_the_open_ticket(session):
    first_contact = make_contact(session)
    colleague = make_contact(session, name="Ruud Bakker", role="key_user")
    first = open_ticket(session, first_contact, "CA1")
    second = open_ticket(session, colleague, "CA2", now=T0 + timedelta(minutes=29))
    assert second.ticket_id == first.ticket_id
    assert opening.is_joined_call(session, second)
    assert not opening.is_joined_call(session, first)
    assert kinds(session, first.ticket_id).count("call_joined") == 1


def test_window_counts_from_the_last_call_on_the_ticket(session):
    contact = make_contact(session)
    first = open_ticket(session, contact, "CA1")
    open_ticket(session, contact, "CA2", now=T0 + timedelta(minutes=25))
    third = open_ticket(session, contact, "CA3", now=T0 + timedelta(minutes=50))
    assert third.ticket_id == first.ticket_id


def test_no_join_after_the_window_when_closed_other_organisation_or_window_zero(session):
    contact = make_contact(session)
    first = open_ticket(session, contact, "CA1")
    late = open_ticket(session, contact, "CA2", now=T0 + timedelta(minutes=31))
    assert late.ticket_id != first.ticket_id

    other = make_contact(session, org="Globex", name="Eva Smit")
    assert open_ticket(session, other, "CA3", now=T0 + timedelta(minutes=32)).ticket_id not in (
        first.ticket_id,
        late.ticket_id,
    )

    late.ticket.status = "resolved"
    session.commit()
    after_close = open_ticket(session, contact, "CA4", now=T0 + timedelta(minutes=33))
    assert after_close.ticket_id != late.ticket_id

    never = open_ticket(session, contact, "CA5", now=T0 + timedelta(minutes=34), window=0)
    assert never.ticket_id != after_close.ticket_id


def test_reason_and_description_are_stored_once_and_appended_for_a_joined_call(session):
    contact = make_contact(session)
    first = open_ticket(session, contact, "CA1")
    timeline.record_reason(session, call=first, reason="outage")
    timeline.record_reason(session, call=first, reason="outage")
    timeline.record_description(session, call=first, text="login werkt niet", confidence=0.8)
    timeline.record_description(session, call=first, text="login werkt niet", confidence=0.8)
    second = open_ticket(session, contact, "CA2", now=T0 + timedelta(minutes=5))
    timeline.record_reason(session, call=second, reason=None)
    timeline.record_description(session, call=second, text="nog steeds plat")
    ticket = session.get(Ticket, first.ticket_id)
    session.refresh(ticket)
    assert ticket.reason == "outage"
    assert ticket.description == "login werkt niet\nnog steeds plat"
    assert first.transcription == "login werkt niet"
    assert second.transcription == "nog steeds plat"
    events = kinds(session, ticket.id)
    assert events.count("triage") == 2
    assert events.count("description") == 2


def test_skipped_description_leaves_the_ticket_alone(session):
    call = open_ticket(session, make_contact(session), "CA1")
    timeline.record_description(session, call=call, text=None)
    session.refresh(call.ticket)
    assert call.ticket.description is None
    assert call.transcription is None
    details = session.scalars(select(TicketEvent.detail).where(TicketEvent.kind == "description"))
    assert list(details) == ["skipped"]


def test_accepting_engineer_is_recorded_once_with_ring_time(session):
    call = open_ticket(session, make_contact(session), "CA1")
    timeline.record_engineers_rung(session, call=call, engineers=["Eng 1", "Eng 2"], now=T0)
    timeline.record_engineers_rung(session, call=call, engineers=["Eng 1", "Eng 2"], now=T0)
    timeline.record_engineer_response(
        session,
        ticket=call.ticket,
        call=call,
        engineer="Eng 2",
        accepted=False,
        now=T0 + timedelta(seconds=4),
    )
    timeline.record_engineer_response(
        session,
        ticket=call.ticket,
        call=call,
        engineer="Eng 1",
        accepted=True,
        now=T0 + timedelta(seconds=9),
    )
    timeline.record_engineer_response(
        session,
        ticket=call.ticket,
        call=call,
        engineer="Eng 2",
        accepted=True,
        now=T0 + timedelta(seconds=12),
    )
    assert call.answered_by == "Eng 1"
    assert call.ring_seconds == 9
    events = kinds(session, call.ticket_id)
    assert events.count("engineer_rung") == 2
    assert events.count("engineer_refused") == 1


@pytest.mark.parametrize(
    ("events", "outcome"),
    [
        (set(), "abandoned_before_triage"),
        ({"triage"}, "abandoned_after_triage"),
        ({"triage", "engineer_rung"}, "abandoned_while_ringing"),
        ({"triage", "engineer_rung", "engineers_unavailable"}, "no_answer"),
        ({"engineer_rung", "engineer_refused", "engineers_unavailable"}, "refused"),
        ({"engineer_rung", "engineers_unavailable", "voicemail"}, "voicemail"),
        ({"engineer_rung", "engineer_refused", "engineer_accepted"}, "answered"),
    ],
)
def test_outcome_of_an_ended_call_follows_how_far_it_got(events, outcome):
    assert outcomes.outcome_from_events(events) == outcome


def test_settling_is_final_and_repeated_callbacks_change_nothing(session):
    call = open_ticket(session, make_contact(session), "CA1")
    timeline.record_reason(session, call=call, reason="outage")
    settled = outcomes.settle_ticket_call(session, sid="CA1", duration=20, now=T0)
    assert (settled.outcome, settled.duration, settled.ended_at) == (
        "abandoned_after_triage",
        20,
        T0,
    )
    timeline.record_engineers_rung(session, call=call, engineers=["Eng 1"])
    outcomes.settle_ticket_call(session, sid="CA1", duration=99, now=T0 + timedelta(hours=1))
    assert (call.outcome, call.duration, call.ended_at) == ("abandoned_after_triage", 20, T0)
    assert kinds(session, call.ticket_id).count("call_ended") == 1
    assert outcomes.settle_ticket_call(session, sid="CA-unknown", duration=1) is None


def test_a_voicemail_arriving_after_the_hang_up_still_counts(session):
    call = open_ticket(session, make_contact(session), "CA1", in_hours=False)
    outcomes.settle_ticket_call(session, sid="CA1", duration=40, now=T0)
    assert call.outcome == "abandoned_before_triage"
    outcomes.record_voicemail(
        session,
        call=call,
        recording_url="https://api.twilio.com/rec/RE1",
        recording_sid="RE1",
        duration=31,
    )
    assert call.outcome == "voicemail"
    assert call.recording_url == "https://api.twilio.com/rec/RE1"
    assert call.recording_duration == 31


def test_an_answered_call_never_moves_back(session):
    call = open_ticket(session, make_contact(session), "CA1")
    outcomes.record_dial_outcome(session, call=call, outcome="answered")
    outcomes.record_dial_outcome(session, call=call, outcome="abandoned_while_ringing")
    outcomes.record_voicemail(
        session, call=call, recording_url="https://x.example/r", recording_sid=None, duration=1
    )
    outcomes.settle_ticket_call(session, sid="CA1", duration=300, now=T0)
    assert call.outcome == "answered"
    assert call.duration == 300


def test_bridged_recording_is_stored_on_the_call(session):
    call = open_ticket(session, make_contact(session), "CA1")
    timeline.record_call_recording(
        session,
        call=call,
        recording_url="https://api.twilio.com/rec/RE9",
        recording_sid="RE9",
        duration=120,
    )
    assert (call.recording_url, call.recording_sid, call.recording_duration) == (
        "https://api.twilio.com/rec/RE9",
        "RE9",
        120,
    )
    assert call.outcome == "in_progress"


def test_find_ticket_accepts_only_ticket_numbers(session):
    call = open_ticket(session, make_contact(session), "CA1")
    assert opening.find_ticket(session, call.ticket.number).id == call.ticket_id
    for odd in (None, "", "abc", "1", "-100001", "9" * 40, "100001.5", str(call.ticket_id)):
        assert opening.find_ticket(session, odd) is None
