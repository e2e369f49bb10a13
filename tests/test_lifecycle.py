from datetime import date

import pytest
from sqlalchemy import func, select
from support_helpers import make_organization, make_staff, make_ticket

from core.db import db
from tickets import lifecycle
from tickets.lifecycle import TRANSITIONS
from tickets.models import STATUSES, CallbackRequest, Ticket, TicketEvent, TimeEntry
from tickets.releases import (
    ReleaseWeekError,
    cycle_end,
    last_working_day,
    parse_week,
    suggest_release_week,
    weeks_in_year,
)

# What each target status needs to be reached.
EXTRAS = {
    "waiting_for_customer": {"question": "Which browser do your users use?"},
    "planned": {"release_week": "2030-W22"},
    "closed": {"rating": 4, "comment": "Quick and clear"},
}


@pytest.fixture
def agent(session):
    return make_staff(session)


@pytest.fixture
def admin(session):
    return make_staff(session, email="admin@otys.test", name="Ada Admin", role="admin")


@pytest.fixture
def ticket(session):
    return make_ticket(session, organization=make_organization(session))


def events(session, ticket, kind=None):
    query = select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
    if kind:
        query = query.where(TicketEvent.kind == kind)
    return list(session.scalars(query.order_by(TicketEvent.id)))


def reload(session, ticket) -> Ticket:
    session.expire_all()
    return session.get(Ticket, ticket.id)


def put_in_status(session, ticket, status):
    ticket.status = status
    session.commit()
    session.execute(TicketEvent.__table__.delete().where(TicketEvent.ticket_id == ticket.id))
    session.commit()


@pytest.mark.parametrize("current", STATUSES)
@pytest.mark.parametrize("target", STATUSES)
def test_every_transition_is_allowed_or_refused_as_the_table_says(
    session, agent, ticket, current, target
):
    put_in_status(session, ticket, current)
    allowed = target in TRANSITIONS[current]
    if allowed:
        lifecycle.change_status(
            session, ticket=ticket, staff=agent, status=target, **EXTRAS.get(target, {})
        )
        session.commit()
        assert reload(session, ticket).status == target
        history = events(session, ticket, "status")
        assert len(history) == 1
        assert history[0].detail.startswith(f"{current} → {target}")
        assert history[0].staff_id == agent.id
        assert history[0].at is not None
    else:
        with pytest.raises(lifecycle.InvalidTransition):
            lifecycle.change_status(
                session, ticket=ticket, staff=agent, status=target, **EXTRAS.get(target, {})
            )
        assert reload(session, ticket).status == current
        assert events(session, ticket) == []


def test_closed_is_final_and_every_open_status_can_be_closed():
    assert TRANSITIONS["closed"] == ()
    for status in STATUSES:
        if status != "closed":
            assert "closed" in TRANSITIONS[status]
    assert TRANSITIONS["resolved"] == ("in_progress", "closed")


def test_unknown_status_is_invalid_input(session, agent, ticket):
    with pytest.raises(lifecycle.InvalidInput):
        lifecycle.change_status(session, ticket=ticket, staff=agent, status="done")


def test_waiting_for_customer_needs_the_question_and_keeps_it(session, agent, ticket):
    for empty in (None, "", "   "):
        with pytest.raises(lifecycle.InvalidInput, match="question"):
            lifecycle.change_status(
                session, ticket=ticket, staff=agent, status="waiting_for_customer", question=empty
            )
    assert reload(session, ticket).status == "new"
    lifecycle.change_status(
        session,
        ticket=ticket,
        staff=agent,
        status="waiting_for_customer",
        question="  Since when does the login fail?  ",
    )
    session.commit()
    stored = reload(session, ticket)
    assert stored.waiting_question == "Since when does the login fail?"
    assert "Since when does the login fail?" in events(session, ticket, "status")[0].detail


@pytest.mark.parametrize("week", [None, "", "next week", "2025-W53", "2025-W00", "2030-W54", 2030])
def test_planning_needs_a_real_release_week(session, agent, ticket, week):
    put_in_status(session, ticket, "with_product_team")
    with pytest.raises(lifecycle.InvalidInput):
        lifecycle.change_status(
            session, ticket=ticket, staff=agent, status="planned", release_week=week
        )
    stored = reload(session, ticket)
    assert stored.status == "with_product_team"
    assert stored.release_week is None


def test_planning_stores_the_normalised_week(session, agent, ticket):
    put_in_status(session, ticket, "with_product_team")
    lifecycle.change_status(
        session, ticket=ticket, staff=agent, status="planned", release_week=" 2026w53 "
    )
    session.commit()
    assert reload(session, ticket).release_week == "2026-W53"


def test_release_week_of_a_planned_ticket_can_slip(session, agent, ticket):
    put_in_status(session, ticket, "in_progress")
    with pytest.raises(lifecycle.InvalidTransition):
        lifecycle.set_release_week(session, ticket=ticket, staff=agent, week="2030-W22")
    lifecycle.change_status(
        session, ticket=ticket, staff=agent, status="planned", release_week="2030-W22"
    )
    session.commit()
    with pytest.raises(lifecycle.InvalidInput):
        lifecycle.set_release_week(session, ticket=ticket, staff=agent, week="2030-W60")
    lifecycle.set_release_week(session, ticket=ticket, staff=agent, week="2030-W31")
    session.commit()
    assert reload(session, ticket).release_week == "2030-W31"
    assert events(session, ticket, "release_week")[0].detail == "2030-W22 → 2030-W31"


@pytest.mark.parametrize("rating", [None, "", 0, 6, -1, "five", 4.5, True, "10"])
def test_closing_refuses_a_rating_outside_one_to_five(session, agent, ticket, rating):
    with pytest.raises(lifecycle.InvalidInput):
        lifecycle.close_ticket(session, ticket=ticket, staff=agent, rating=rating)
    stored = reload(session, ticket)
    assert stored.status == "new"
    assert stored.rating is None
    assert stored.closed_at is None


@pytest.mark.parametrize("rating", [1, 2, 3, 4, 5, "3"])
def test_closing_records_rating_comment_and_time(session, agent, ticket, rating):
    lifecycle.close_ticket(session, ticket=ticket, staff=agent, rating=rating, comment=" Top ")
    session.commit()
    stored = reload(session, ticket)
    assert stored.status == "closed"
    assert stored.rating == int(rating)
    assert stored.rating_comment == "Top"
    assert stored.closed_at is not None


def test_only_an_admin_reopens_and_the_old_rating_stays_in_history(session, agent, admin, ticket):
    lifecycle.close_ticket(session, ticket=ticket, staff=agent, rating=2, comment="slow")
    session.commit()
    with pytest.raises(lifecycle.NotAllowed):
        lifecycle.reopen_ticket(session, ticket=ticket, staff=agent)
    assert reload(session, ticket).status == "closed"
    lifecycle.reopen_ticket(session, ticket=ticket, staff=admin)
    session.commit()
    stored = reload(session, ticket)
    assert stored.status == "in_progress"
    assert stored.rating is None and stored.closed_at is None
    assert "previous rating 2" in events(session, ticket, "status")[-1].detail
    with pytest.raises(lifecycle.InvalidTransition):
        lifecycle.reopen_ticket(session, ticket=stored, staff=admin)


def test_acknowledge_assigns_and_starts_work(session, agent, admin, ticket):
    lifecycle.acknowledge_ticket(session, ticket=ticket, staff=agent)
    session.commit()
    stored = reload(session, ticket)
    assert stored.acknowledged_by_id == agent.id
    assert stored.assigned_to_id == agent.id
    assert stored.status == "in_progress"
    acknowledged_at = stored.acknowledged_at
    assert lifecycle.time_to_acknowledge(stored) >= acknowledged_at - acknowledged_at
    assert [e.kind for e in events(session, ticket)] == ["acknowledged", "assigned", "status"]

    lifecycle.acknowledge_ticket(session, ticket=stored, staff=agent)
    session.commit()
    assert len(events(session, ticket)) == 3  # nothing changed, nothing written

    lifecycle.acknowledge_ticket(session, ticket=stored, staff=admin)
    session.commit()
    stored = reload(session, ticket)
    assert stored.assigned_to_id == admin.id
    assert stored.acknowledged_by_id == agent.id
    assert stored.acknowledged_at == acknowledged_at
    assert events(session, ticket)[-1].detail == "assigned to Ada Admin (was Agent Smith)"


def test_first_status_change_counts_as_acknowledgement(session, agent, ticket):
    lifecycle.change_status(session, ticket=ticket, staff=agent, status="with_product_team")
    session.commit()
    stored = reload(session, ticket)
    assert stored.acknowledged_by_id == agent.id
    assert stored.acknowledged_at is not None


def test_closed_ticket_cannot_be_acknowledged_recategorised_or_billed(session, agent, ticket):
    lifecycle.close_ticket(session, ticket=ticket, staff=agent, rating=5)
    session.commit()
    count = len(events(session, ticket))
    with pytest.raises(lifecycle.InvalidTransition):
        lifecycle.acknowledge_ticket(session, ticket=ticket, staff=agent)
    with pytest.raises(lifecycle.InvalidTransition):
        lifecycle.change_category(session, ticket=ticket, staff=agent, category="question")
    with pytest.raises(lifecycle.InvalidTransition):
        lifecycle.log_time(session, ticket=ticket, staff=agent, minutes=5)
    assert len(events(session, ticket)) == count


def test_category_changes_are_kept_and_checked(session, agent, ticket):
    with pytest.raises(lifecycle.InvalidInput):
        lifecycle.change_category(session, ticket=ticket, staff=agent, category="feature")
    lifecycle.change_category(session, ticket=ticket, staff=agent, category="question")
    session.commit()
    assert reload(session, ticket).category == "question"
    assert events(session, ticket, "category")[0].detail == "bug → question"


def test_notes_are_kept_in_history_and_must_have_text(session, agent, ticket):
    with pytest.raises(lifecycle.InvalidInput):
        lifecycle.add_note(session, ticket=ticket, staff=agent, text="   ")
    with pytest.raises(lifecycle.InvalidInput):
        lifecycle.add_note(session, ticket=ticket, staff=agent, text="x" * 5001)
    lifecycle.add_note(session, ticket=ticket, staff=agent, text="Called the customer back")
    session.commit()
    note = events(session, ticket, "note")[0]
    assert note.detail == "Called the customer back"
    assert note.staff_id == agent.id


def minutes_logged(session, ticket):
    return session.scalar(
        select(func.coalesce(func.sum(TimeEntry.minutes), 0)).where(
            TimeEntry.ticket_id == ticket.id
        )
    )


def test_first_thirty_minutes_of_a_question_are_free(session, agent, ticket):
    lifecycle.change_category(session, ticket=ticket, staff=agent, category="question")
    session.commit()
    lifecycle.log_time(session, ticket=ticket, staff=agent, minutes=20)
    session.commit()
    lifecycle.log_time(session, ticket=ticket, staff=agent, minutes=10, note="explained export")
    session.commit()
    assert minutes_logged(session, ticket) == 30
    with pytest.raises(lifecycle.ApprovalRequired, match="approval"):
        lifecycle.log_time(session, ticket=ticket, staff=agent, minutes=1)
    assert minutes_logged(session, ticket) == 30
    assert len(events(session, ticket, "time")) == 2

    lifecycle.record_rate_approval(session, ticket=ticket, staff=agent)
    session.commit()
    lifecycle.log_time(session, ticket=ticket, staff=agent, minutes=15)
    session.commit()
    summary = lifecycle.time_summary(session, reload(session, ticket))
    assert (summary.total, summary.billable, summary.free_left) == (45, 15, 0)
    assert reload(session, ticket).rate_approved_by_id == agent.id


def test_time_crossing_the_free_limit_needs_approval_and_is_split(session, agent, ticket):
    lifecycle.change_category(session, ticket=ticket, staff=agent, category="question")
    session.commit()
    lifecycle.log_time(session, ticket=ticket, staff=agent, minutes=20)
    session.commit()
    with pytest.raises(lifecycle.ApprovalRequired):
        lifecycle.log_time(session, ticket=ticket, staff=agent, minutes=25)
    assert minutes_logged(session, ticket) == 20
    lifecycle.record_rate_approval(session, ticket=ticket, staff=agent)
    session.commit()
    entries = lifecycle.log_time(session, ticket=ticket, staff=agent, minutes=25)
    session.commit()
    assert [(e.minutes, e.billable) for e in entries] == [(10, False), (15, True)]
    assert "10 free, 15 at the standard rate" in events(session, ticket, "time")[-1].detail


def test_bugs_have_no_free_minute_limit(session, agent, ticket):
    lifecycle.log_time(session, ticket=ticket, staff=agent, minutes=120)
    session.commit()
    lifecycle.log_time(session, ticket=ticket, staff=agent, minutes=120)
    session.commit()
    summary = lifecycle.time_summary(session, ticket)
    assert (summary.total, summary.billable, summary.free_left) == (240, 0, None)


@pytest.mark.parametrize("minutes", [0, -5, 481, 10**9, "ten", None, True, 2.5])
def test_odd_minutes_are_refused(session, agent, ticket, minutes):
    with pytest.raises(lifecycle.InvalidInput):
        lifecycle.log_time(session, ticket=ticket, staff=agent, minutes=minutes)
    assert minutes_logged(session, ticket) == 0
    assert events(session, ticket) == []


def test_rate_approval_is_recorded_once(session, agent, admin, ticket):
    lifecycle.record_rate_approval(session, ticket=ticket, staff=agent)
    session.commit()
    lifecycle.record_rate_approval(session, ticket=ticket, staff=admin)
    session.commit()
    assert reload(session, ticket).rate_approved_by_id == agent.id
    assert len(events(session, ticket, "rate_approved")) == 1


def test_a_change_made_on_an_old_version_is_refused(session, agent, ticket):
    old = ticket.version
    lifecycle.change_category(session, ticket=ticket, staff=agent, category="other")
    session.commit()
    assert reload(session, ticket).version == old + 1
    with pytest.raises(lifecycle.StaleTicket, match="someone else"):
        lifecycle.change_status(
            session, ticket=ticket, staff=agent, status="resolved", expected_version=old
        )
    with pytest.raises(lifecycle.InvalidInput):
        lifecycle.change_status(
            session, ticket=ticket, staff=agent, status="resolved", expected_version="v1"
        )
    assert reload(session, ticket).status == "new"
    lifecycle.change_status(
        session, ticket=ticket, staff=agent, status="resolved", expected_version=str(old + 1)
    )
    session.commit()
    assert reload(session, ticket).status == "resolved"


def test_a_concurrent_edit_in_between_is_caught_and_nothing_is_half_saved(session, agent, ticket):
    other = db.session_factory()
    try:
        theirs = other.get(Ticket, ticket.id)
        mine = session.get(Ticket, ticket.id)
        assert theirs.version == mine.version
        theirs.category = "question"
        other.commit()
        # `mine` still holds the old version: the UPDATE finds no row and everything rolls back.
        with pytest.raises(lifecycle.StaleTicket):
            lifecycle.change_status(
                session,
                ticket=mine,
                staff=agent,
                status="closed",
                rating=5,
                expected_version=mine.version,
            )
    finally:
        other.close()
    stored = reload(session, ticket)
    assert stored.status == "new"
    assert stored.rating is None
    assert stored.category == "question"
    assert events(session, ticket) == []


def test_unknown_ticket_numbers_are_not_found(session, ticket):
    for number in ("99", "abc", "1" * 40, str(100000 + ticket.id + 1), "١٠٠٠٠١"):
        with pytest.raises(lifecycle.TicketNotFound):
            lifecycle.find_ticket(session, number)
    assert lifecycle.find_ticket(session, ticket.number).id == ticket.id


def test_a_voicemail_is_called_back_once(app, clock, session, agent, admin):
    callback = CallbackRequest(call_sid="CA" + "9" * 32, caller="+31612345678", department="sales")
    session.add(callback)
    session.commit()
    with app.app_context():  # where the service reads the app's clock
        lifecycle.mark_called_back(session, callback=callback, staff=agent)
        session.commit()
    with pytest.raises(lifecycle.InvalidTransition):
        lifecycle.mark_called_back(session, callback=callback, staff=admin)
    session.expire_all()
    stored = session.get(CallbackRequest, callback.id)
    assert stored.called_back_by_id == agent.id
    assert stored.called_back_at == clock.now


# ------------------------------------------------------------------ release weeks


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        ("2025-01-06", "2025-W05"),  # current cycle ends Fri 31 Jan 2025
        ("2025-02-10", "2025-W14"),  # even month: cycle ends Mon 31 Mar
        ("2025-03-03", "2025-W14"),
        ("2025-03-20", "2025-W22"),  # 11 days before the end: next cycle, Fri 30 May
        ("2025-07-17", "2025-W31"),  # exactly 14 days left still fits
        ("2025-07-18", "2025-W40"),  # 13 days left: Tue 30 Sep
        ("2025-11-20", "2026-W05"),  # across the year end: Fri 30 Jan 2026
        ("2025-12-15", "2026-W05"),  # December belongs to the cycle ending in January
        ("2026-12-20", "2027-W04"),  # Fri 29 Jan 2027
        ("2024-03-15", "2024-W22"),  # ends Thu 28 Mar (Good Friday is off): 13 days left
    ],
)
def test_release_week_suggestion_follows_the_two_month_cycles(today, expected):
    assert suggest_release_week(date.fromisoformat(today)) == expected


def test_cycle_ends_on_the_last_working_day_of_an_odd_month():
    assert cycle_end(date(2025, 6, 1)) == date(2025, 7, 31)
    assert cycle_end(date(2025, 12, 1)) == date(2026, 1, 30)
    assert last_working_day(2024, 3) == date(2024, 3, 28)  # Good Friday is skipped
    assert last_working_day(2025, 5) == date(2025, 5, 30)  # Saturday the 31st is skipped


def test_week_53_exists_only_in_long_years():
    assert [y for y in range(2015, 2033) if weeks_in_year(y) == 53] == [2015, 2020, 2026, 2032]
    assert parse_week("2026-W53") == "2026-W53"
    assert parse_week("2020-W53") == "2020-W53"
    for bad in ("2025-W53", "2027-W53", "2026-W54", "2026-W00", "2026-13", "W22", "1999-W10"):
        with pytest.raises(ReleaseWeekError):
            parse_week(bad)


def test_week_notation_is_forgiving_but_normalised():
    assert parse_week("2025-w7") == "2025-W07"
    assert parse_week(" 2025W22 ") == "2025-W22"


@pytest.mark.parametrize(
    ("number", "ticket_id"),
    [
        ("100001", 1),
        (" 100042 ", 42),
        (100005, 5),
        ("0000100007", 7),
        ("100000", None),
        ("99999", None),
        ("+100001", None),
        ("1_00001", None),
        ("１００００１", None),
        ("10000000001", None),
        ("2147583648", None),
        ("", None),
        ("abc", None),
    ],
)
def test_a_ticket_number_is_up_to_ten_ascii_digits_naming_a_possible_id(number, ticket_id):
    assert Ticket.id_from_number(number) == ticket_id
