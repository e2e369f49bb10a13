import csv
import io
import json
import re
import statistics as python_statistics
from datetime import UTC, date, datetime, timedelta

import pytest
from helpers import AMSTERDAM
from sqlalchemy import extract, func, select
from support_helpers import make_organization, make_staff, make_ticket, sign_in

from core.db import db
from ivr.models import CallLog
from ivr.office import menu
from tickets.models import Ticket, TicketCall
from tickets.statistics.figures import OUTCOME_GROUPS, gather_statistics
from tickets.statistics.localtime import offset_pieces
from tickets.statistics.percentiles import Spread, measure_spread
from tickets.statistics.period import MAX_DAYS, Period, PeriodError, choose_period
from tickets.urgent import OUTCOME_RANK

CALLS = iter(range(1, 10_000))


def local(day: int, hour: int, minute: int = 0, month: int = 12) -> datetime:
    """Return a moment of 2026 given in Amsterdam time."""
    return datetime(2026, month, day, hour, minute, tzinfo=AMSTERDAM)


def add_call(session, ticket, started, outcome, *, accepted_after=None, by=None, line="emergency"):
    call = TicketCall(
        ticket_id=ticket.id,
        sid=f"CA{next(CALLS):032d}",
        line=line,
        outcome=outcome,
        started_at=started,
        answered_at=started + timedelta(seconds=accepted_after) if accepted_after else None,
        answered_by=by,
    )
    session.add(call)
    session.commit()
    return call


def urgent(session, organization, created, *, in_hours=True, acknowledged_after=None, **fields):
    acknowledged = created + timedelta(seconds=acknowledged_after) if acknowledged_after else None
    return make_ticket(
        session,
        organization=organization,
        created_at=created,
        in_hours=in_hours,
        acknowledged_at=acknowledged,
        **fields,
    )


def add_office_call(session, started, trail, *, line="office"):
    session.add(CallLog(sid=f"CA{next(CALLS):032d}", line=line, started_at=started, choices=trail))
    session.commit()


@pytest.fixture
def known_calls(session, clock):
    """Ten emergency calls on six urgent tickets in the 30 days before Monday 7 December 2026."""
    acme = make_organization(session, "Acme Recruitment")
    globex = make_organization(session, "Globex Staffing")
    t1 = urgent(session, acme, local(30, 9, 15, month=11), acknowledged_after=120)
    add_call(session, t1, local(30, 9, 15, month=11), "answered", accepted_after=20, by="Eva")
    add_call(session, t1, local(30, 9, 40, month=11), "voicemail")
    t2 = urgent(session, acme, local(1, 22, 30), in_hours=False, acknowledged_after=600)
    add_call(session, t2, local(1, 22, 30), "answered", accepted_after=40, by="Eva")
    t3 = urgent(session, globex, local(1, 9, 5))
    add_call(session, t3, local(1, 9, 5), "refused")
    t4 = urgent(session, globex, local(2, 14, 10), acknowledged_after=300)
    add_call(session, t4, local(2, 14, 10), "answered", accepted_after=30, by="Bram")
    add_call(session, t4, local(2, 14, 20), "abandoned_while_ringing")
    t5 = urgent(session, None, local(5, 3, 0), in_hours=False, acknowledged_after=60)
    add_call(session, t5, local(5, 3, 0), "abandoned_before_triage")
    add_call(session, t5, local(5, 3, 5), "no_answer")
    t6 = urgent(session, acme, local(7, 9, 30), acknowledged_after=90)
    add_call(session, t6, local(7, 9, 30), "in_progress")
    add_call(session, t6, local(7, 9, 35), "answered", accepted_after=50, by="Bram")
    # Outside the figures: before the period, another line, a normal ticket.
    early = urgent(session, acme, local(7, 23, 59, month=11), acknowledged_after=5)
    add_call(session, early, local(7, 23, 59, month=11), "answered", accepted_after=5, by="Eva")
    normal = make_ticket(session, organization=acme, priority="normal", created_at=local(3, 10))
    normal.acknowledged_at = local(3, 11)
    session.commit()
    add_call(session, normal, local(3, 10), "answered", accepted_after=7, by="Eva", line="office")
    return acme, globex


@pytest.fixture
def office_calls(session, clock):
    """Nine office calls in the period, one before it and one on the emergency line."""
    for trail in (
        "menu:1 dial:finance:completed",
        "menu:1 dial:finance:no-answer voicemail:finance",
        "lang:en menu:1 dial:finance:completed",
        "menu:invalid menu:2 dial:sales:no-answer voicemail:sales",
        "menu:* menu:2 dial:sales:completed",
        "menu:3",
        "menu:4 ext:201 dial:201:completed",
        "menu:none menu:none menu:none reception dial:reception:completed",
        "",
    ):
        add_office_call(session, local(2, 11), trail)
    add_office_call(session, local(7, 23, month=11), "menu:2 dial:sales:completed")
    add_office_call(session, local(2, 11), "menu:1", line="emergency")


def thirty_days() -> Period:
    return Period(date(2026, 11, 8), date(2026, 12, 7), AMSTERDAM)


def test_the_figures_match_a_known_set_of_calls(app, session, known_calls, office_calls):
    stats = gather_statistics(
        session, period=thirty_days(), office=app.config["OFFICE_MENU_FIGURES"]
    )
    calls = stats.calls
    assert dict(calls.totals) == {
        "answered": 4,
        "voicemail": 1,
        "refused": 1,
        "no_answer": 1,
        "abandoned": 2,
        "in_progress": 1,
    }
    assert (calls.count, calls.settled) == (10, 9)
    assert calls.answer_rate == pytest.approx(4 / 9)
    assert len(calls.per_day) == 30
    busy = {day: dict(+counts) for day, counts in calls.per_day.items() if +counts}
    assert busy == {
        date(2026, 11, 30): {"answered": 1, "voicemail": 1},
        date(2026, 12, 1): {"answered": 1, "refused": 1},
        date(2026, 12, 2): {"answered": 1, "abandoned": 1},
        date(2026, 12, 5): {"abandoned": 1, "no_answer": 1},
        date(2026, 12, 7): {"answered": 1, "in_progress": 1},
    }
    cells = {
        (weekday, hour): count
        for weekday, hours in enumerate(calls.heat)
        for hour, count in enumerate(hours)
        if count
    }
    assert cells == {(0, 9): 4, (1, 9): 1, (1, 22): 1, (2, 14): 2, (5, 3): 2}
    # Accepted after 20, 30, 40 and 50 s; acknowledged after 60, 90, 120, 300 and 600 s.
    assert stats.time_to_accept == Spread(4, 35.0, 47.0)
    assert stats.urgent_tickets == 6
    assert stats.time_to_acknowledge == Spread(5, 120.0, 480.0)
    assert [tuple(vars(o).values()) for o in stats.organisations] == [
        ("Acme Recruitment", 3, 5, 3),
        ("Globex Staffing", 2, 3, 1),
        (None, 1, 2, 0),
    ]
    assert stats.organisations_calling == 3
    busiest = gather_statistics(session, period=thirty_days(), organisations=2)
    assert busiest.organisations == stats.organisations[:2]
    assert busiest.organisations_calling == 3
    assert [(e.name, e.in_hours, e.out_of_hours) for e in stats.engineers] == [
        ("Bram", 2, 0),
        ("Eva", 1, 1),
    ]
    assert stats.office_choices == [
        ("1 · Finance", 3),
        ("2 · Sales", 2),
        ("3 · Emergency line", 1),
        ("4 · Other questions", 1),
        ("No choice", 2),
    ]


def test_an_empty_period_has_no_rates_and_no_percentiles(app, session, clock):
    stats = gather_statistics(session, period=thirty_days())
    assert stats.calls.count == 0
    assert stats.calls.answer_rate is None
    assert stats.time_to_accept == Spread(0, None, None)
    assert stats.time_to_acknowledge == Spread(0, None, None)
    assert stats.organisations == [] and stats.engineers == [] and stats.office_choices == []


def test_every_outcome_has_a_group():
    grouped = [outcome for outcomes in OUTCOME_GROUPS.values() for outcome in outcomes]
    assert sorted(grouped) == sorted(OUTCOME_RANK)


def test_days_and_hours_are_the_desks_also_when_the_clocks_change(app, session, clock):
    acme = make_organization(session)
    ticket = urgent(session, acme, datetime(2026, 10, 20, tzinfo=UTC))
    for moment in (
        datetime(2026, 10, 24, 21, 59, tzinfo=UTC),  # Sat 23:59 summer time
        datetime(2026, 10, 24, 22, 30, tzinfo=UTC),  # Sun 00:30 summer time
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # Sun 02:30, the first time
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # Sun 02:30 again, winter time
        datetime(2026, 10, 25, 22, 59, tzinfo=UTC),  # Sun 23:59 winter time
        datetime(2026, 10, 25, 23, 0, tzinfo=UTC),  # Mon 00:00
        datetime(2026, 3, 29, 0, 59, tzinfo=UTC),  # Sun 01:59 winter time, spring
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # Sun 03:00 summer time
    ):
        add_call(session, ticket, moment, "answered")
    autumn = gather_statistics(
        session, period=Period(date(2026, 10, 24), date(2026, 10, 26), AMSTERDAM)
    )
    assert {day: counts.total() for day, counts in autumn.calls.per_day.items()} == {
        date(2026, 10, 24): 1,
        date(2026, 10, 25): 4,
        date(2026, 10, 26): 1,
    }
    heat = autumn.calls.heat
    assert (heat[5][23], heat[6][0], heat[6][2], heat[6][23], heat[0][0]) == (1, 1, 2, 1, 1)
    spring = gather_statistics(
        session, period=Period(date(2026, 3, 29), date(2026, 3, 29), AMSTERDAM)
    )
    assert spring.calls.count == 2
    assert (spring.calls.heat[6][1], spring.calls.heat[6][3]) == (1, 1)


def test_the_offset_pieces_of_a_year_in_amsterdam():
    start, end = datetime(2025, 12, 31, 23, tzinfo=UTC), datetime(2026, 12, 31, 23, tzinfo=UTC)
    assert offset_pieces(AMSTERDAM, start, end) == [
        (start, 3600),
        (datetime(2026, 3, 29, 1, tzinfo=UTC), 7200),
        (datetime(2026, 10, 25, 1, tzinfo=UTC), 3600),
    ]


@pytest.mark.parametrize(
    ("values", "median", "p90"),
    [
        ([7], 7.0, 7.0),
        ([10, 20], 15.0, 19.0),
        ([60, 600, 90, 300, 120], 120.0, 480.0),
        (list(range(1, 101)), 50.5, 90.1),
    ],
)
def test_percentiles_interpolate_between_ranks(app, session, clock, values, median, p90):
    acme = make_organization(session)
    ticket = urgent(session, acme, local(1, 9))
    for seconds in values:
        add_call(session, ticket, local(1, 9), "answered", accepted_after=seconds, by="Eva")
    spread = gather_statistics(session, period=thirty_days()).time_to_accept
    assert spread == Spread(len(values), median, p90)
    expected = python_statistics.quantiles(values * 2 if len(values) == 1 else values, n=10,
                                           method="inclusive")  # fmt: skip
    assert spread.p90 == pytest.approx(round(expected[8], 1))


def test_percentiles_agree_with_postgresql_percentile_cont(app, session, clock):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("percentile_cont is PostgreSQL's")
    acme = make_organization(session)
    ticket = urgent(session, acme, local(1, 9))
    for seconds in (3, 8, 8, 13, 21, 34, 55, 89, 144, 233, 377):
        add_call(session, ticket, local(1, 9), "answered", accepted_after=seconds, by="Eva")
    seconds = extract("epoch", TicketCall.answered_at - TicketCall.started_at)
    median, p90 = session.execute(
        select(
            func.percentile_cont(0.5).within_group(seconds),
            func.percentile_cont(0.9).within_group(seconds),
        ).where(TicketCall.answered_at.is_not(None))
    ).one()
    spread = measure_spread(session, seconds, TicketCall.answered_at.is_not(None))
    assert (spread.median, spread.p90) == (round(median, 1), round(p90, 1)) == (34.0, 233.0)
    page = gather_statistics(session, period=thirty_days()).time_to_accept
    assert page == Spread(11, 34.0, 233.0)


def test_a_period_is_thirty_days_until_today_unless_asked_otherwise():
    today = date(2026, 12, 7)
    assert choose_period(None, None, today=today, zone=AMSTERDAM) == Period(
        date(2026, 11, 8), today, AMSTERDAM
    )
    assert choose_period(date(2026, 12, 1), None, today=today, zone=AMSTERDAM).last == today
    assert choose_period(None, date(2026, 6, 30), today=today, zone=AMSTERDAM).first == date(
        2026, 6, 1
    )
    assert choose_period(date(2027, 1, 5), None, today=today, zone=AMSTERDAM).days() == [
        date(2027, 1, 5)
    ]
    year = choose_period(date(2025, 12, 7), today, today=today, zone=AMSTERDAM)
    assert len(year.days()) == MAX_DAYS == 366
    with pytest.raises(PeriodError, match="at most 366 days"):
        choose_period(date(2025, 12, 6), today, today=today, zone=AMSTERDAM)
    with pytest.raises(PeriodError, match="starts after it ends"):
        choose_period(date(2026, 12, 8), today, today=today, zone=AMSTERDAM)
    period = choose_period(None, None, today=today, zone=AMSTERDAM)
    assert period.start == datetime(2026, 11, 7, 23, tzinfo=UTC)
    assert period.end == datetime(2026, 12, 7, 23, tzinfo=UTC)


@pytest.mark.parametrize(
    ("trail", "key"),
    [
        ("menu:1 dial:finance:completed", "1"),
        ("lang:en menu:2 dial:sales:busy", "2"),
        ("menu:invalid menu:* menu:3", "3"),
        ("menu:4 ext:unknown ext:201", "4"),
        ("menu:none menu:invalid menu:none reception", None),
        ("menu:9", None),
        ("", None),
    ],
)
def test_the_option_a_caller_chose_is_read_from_the_call_log_trail(settings, trail, key):
    assert menu.chosen_option(settings.office, trail) == key


def signed_in(client, session):
    make_staff(session)
    assert sign_in(client).status_code == 303
    return client


def test_the_statistics_page_shows_the_figures_and_the_chart_data(
    app, client, session, known_calls, office_calls
):
    page = signed_in(client, session).get("/support/statistics")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'aria-current="page">Statistics</a>' in html
    assert re.search(r'id="calls-count">10<', html)
    assert re.search(r'id="answer-rate">44.4 %<', html)
    assert 'value="2026-11-08"' in html and 'value="2026-12-07"' in html
    for chart in ("days", "heat", "organisations", "engineers", "office"):
        assert f'<canvas id="chart-{chart}" role="img" aria-label=' in html
    data = re.search(
        r'<script type="application/json" id="statistics-data">(.*?)</script>', html, re.S
    )
    charts = json.loads(data.group(1))
    assert charts["days"]["labels"][0] == "Sun 08 Nov" and len(charts["days"]["labels"]) == 30
    answered = next(s for s in charts["days"]["series"] if s["key"] == "answered")
    assert sum(answered["data"]) == 4 and answered["data"][-1] == 1
    assert charts["heat"]["cells"][0][9] == 4
    assert charts["organisations"]["labels"] == [
        "Acme Recruitment",
        "Globex Staffing",
        "(no organisation)",
    ]
    assert charts["engineers"] == {
        "labels": ["Bram", "Eva"],
        "in_hours": [2, 1],
        "out_of_hours": [0, 1],
    }
    assert charts["office"]["calls"] == [3, 2, 1, 1, 2]
    assert "/support/statistics.csv?from=2026-11-08&amp;to=2026-12-07" in html


def test_the_csv_has_the_same_figures(app, client, session, known_calls, office_calls):
    answer = signed_in(client, session).get("/support/statistics.csv?from=2026-11-08&to=2026-12-07")
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    assert "statistics-2026-11-08-2026-12-07.csv" in answer.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert rows[0] == ["figure", "key", "series", "value"]
    figures = {tuple(row[:3]): row[3] for row in rows[1:]}
    assert len(figures) == len(rows) - 1
    expected = {
        ("period", "from", ""): "2026-11-08",
        ("period", "to", ""): "2026-12-07",
        ("calls", "", "all"): "10",
        ("calls", "", "answered"): "4",
        ("calls", "", "abandoned"): "2",
        ("answer_rate", "", "answered/ended"): "0.4444",
        ("calls_per_day", "2026-12-01", "refused"): "1",
        ("calls_per_day", "2026-12-05", "no_answer"): "1",
        ("calls_per_day", "2026-11-08", "answered"): "0",
        ("calls_by_weekday_hour", "Mon", "09"): "4",
        ("calls_by_weekday_hour", "Tue", "22"): "1",
        ("time_to_accept_seconds", "", "median"): "35.0",
        ("time_to_accept_seconds", "", "p90"): "47.0",
        ("urgent_tickets", "", "all"): "6",
        ("time_to_acknowledge_seconds", "", "count"): "5",
        ("time_to_acknowledge_seconds", "", "median"): "120.0",
        ("time_to_acknowledge_seconds", "", "p90"): "480.0",
        ("organisation", "Acme Recruitment", "calls"): "5",
        ("organisation", "(no organisation)", "tickets"): "1",
        ("engineer", "Eva", "out_of_hours"): "1",
        ("engineer", "Bram", "in_hours"): "2",
        ("office_menu", "1 · Finance", "calls"): "3",
        ("office_menu", "No choice", "calls"): "2",
    }
    assert {key: figures.get(key) for key in expected} == expected
    assert sum(1 for key in figures if key[0] == "calls_per_day") == 30 * len(OUTCOME_GROUPS)
    assert sum(1 for key in figures if key[0] == "calls_by_weekday_hour") == 7 * 24


def test_a_name_that_a_spreadsheet_would_run_is_quoted_in_the_csv(app, client, session, clock):
    evil = make_organization(session, '=HYPERLINK("http://evil.test")')
    add_call(session, urgent(session, evil, local(1, 9)), local(1, 9), "refused")
    answer = signed_in(client, session).get("/support/statistics.csv")
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert ["organisation", '\'=HYPERLINK("http://evil.test")', "calls", "1"] in rows


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-12-08&to=2026-12-07", "starts after it ends"),
        ("from=2025-01-01&to=2026-12-07", "at most 366 days"),
        ("from=2026-02-30", "From: Not a valid date value"),
        ("to=0001-01-01", "To: Give a date between 2000 and 2199"),
        ("from=9999-12-31", "From: Give a date between 2000 and 2199"),
    ],
)
def test_a_bad_period_gets_a_clear_message(app, client, session, clock, query, message):
    signed_in(client, session)
    page = client.get(f"/support/statistics?{query}")
    assert page.status_code == 400
    html = page.get_data(as_text=True)
    assert message in html and 'id="error"' in html
    assert "statistics-data" not in html
    download = client.get(f"/support/statistics.csv?{query}")
    assert download.status_code == 400
    assert message in download.get_data(as_text=True)


def test_statistics_need_a_signed_in_member_of_staff(client, session, clock):
    for path in ("/support/statistics", "/support/statistics.csv"):
        answer = client.get(path)
        assert answer.status_code in (302, 303)
        assert "/support/login" in answer.headers["Location"]


def test_time_to_acknowledge_counts_urgent_tickets_created_in_the_period(session, app, clock):
    acme = make_organization(session)
    urgent(session, acme, local(1, 9), acknowledged_after=30)
    urgent(session, acme, local(1, 10), acknowledged_after=90, priority="high")
    urgent(session, acme, local(8, 0, 0), acknowledged_after=10)  # tomorrow
    stats = gather_statistics(session, period=thirty_days())
    assert stats.urgent_tickets == 1
    assert stats.time_to_acknowledge == Spread(1, 30.0, 30.0)
    assert session.scalar(select(func.count()).select_from(Ticket)) == 3


def test_the_page_lists_the_50_busiest_organisations_and_the_csv_every_one(
    app, client, session, clock
):
    for number in range(55):
        organisation = make_organization(session, f"Client {number:02d}")
        ticket = urgent(session, organisation, local(2, 9))
        for _ in range(1 + (number == 54)):
            add_call(session, ticket, local(2, 9), "answered", accepted_after=10, by="Eva")
    signed_in(client, session)
    html = client.get("/support/statistics").get_data(as_text=True)
    assert "The 50 busiest of 55 organisations as a table (every one is in the CSV)" in html
    table = html.split('id="organisations"', 1)[1].split("</section>", 1)[0]
    assert table.count('<th scope="row">') == 50
    assert table.index("Client 54") < table.index("Client 00")
    rows = list(csv.reader(io.StringIO(client.get("/support/statistics.csv").get_data(True))))
    assert len({row[1] for row in rows if row[0] == "organisation"}) == 55
