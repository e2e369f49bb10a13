import json
import xml.etree.ElementTree as ET
from datetime import timedelta
from functools import partial
from zoneinfo import ZoneInfo

import pytest
from helpers import AUTH_TOKEN, PUBLIC_URL, sign
from sqlalchemy import func, select
from support_helpers import make_staff, sign_in

from bench import run
from bench.floor import FLOOR_PATH, create_floor_app
from bench.flows import FlaskTransport, Twilio, place_call, standard_plans
from bench.reads import statistics_paths
from bench.seed import count_ticket_calls, grow_database, seed_bench
from core.db import db
from ivr.office.figures import count_menu_choices
from tickets.models import Contact, Ticket, TicketCall
from tickets.statistics.figures import gather_statistics
from tickets.statistics.period import Period


@pytest.fixture
def bench_data(session):
    return seed_bench(
        session, callers=12, burst_organizations=1, burst_per_org=2, password="bench-password-1"
    )


def test_every_bench_call_walks_the_real_flows_to_its_end(client, settings, session, bench_data):
    twilio = Twilio(FlaskTransport(client), public_url=PUBLIC_URL, auth_token=AUTH_TOKEN)
    callers = iter(bench_data.callers)
    sids = []
    for plan in standard_plans(settings).values():
        caller = next(callers) if plan.caller_kind == "entitled" else "+31205000001"
        result = place_call(twilio, plan, caller=caller)
        assert result.error is None, (plan.name, result.error)
        assert result.bridged == (plan.expect == "bridged"), plan.name
        assert result.recorded == (plan.expect == "voicemail"), plan.name
        assert len(result.samples) >= 3, plan.name
        if plan.caller_kind == "entitled":
            sids.append(result.sid)
    assert count_ticket_calls(session, sids) == len(sids)


def test_a_call_the_service_answers_badly_is_reported_not_raised(client, settings, bench_data):
    twilio = Twilio(FlaskTransport(client), public_url=PUBLIC_URL, auth_token="wrong-token-123")
    plan = standard_plans(settings)["emergency-accept"]
    result = place_call(twilio, plan, caller=bench_data.callers[0])
    assert result.error == "/voice/incoming answered HTTP 403"
    assert not result.bridged


def test_floor_checks_the_signature_and_answers_a_fixed_gather(settings):
    floor = create_floor_app(settings).test_client()
    form = {"CallSid": "CA1", "Digits": "1"}
    assert floor.post(FLOOR_PATH, data=form).status_code == 403
    signature = sign(PUBLIC_URL + FLOOR_PATH, form)
    response = floor.post(FLOOR_PATH, data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200
    root = ET.fromstring(response.get_data())
    gather = root.find("Gather")
    assert gather is not None and gather.get("action") == FLOOR_PATH
    assert gather.find("Say").text


def test_growth_fills_every_table_in_sql(session, settings):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the grown database is made with PostgreSQL's generate_series")
    grow_database(
        db.engine, tickets=500, contacts=50, organizations=5, call_logs=20, report=lambda _: None
    )
    assert session.scalar(select(func.count()).select_from(Ticket)) == 500
    assert session.scalar(select(func.count()).select_from(Contact)) == 50
    assert session.scalar(select(func.count()).select_from(TicketCall)) == 50
    newest = session.scalars(select(Ticket).order_by(Ticket.created_at.desc()).limit(1)).one()
    assert newest.contact is not None and newest.organization is not None


@pytest.mark.wall_clock
def test_bench_runs_a_tiny_configuration_end_to_end(tmp_path):
    figures = tmp_path / "figures.json"
    run.main(
        [
            "--database-url", f"sqlite:///{tmp_path / 'bench.sqlite3'}",
            "--workers", "1",
            "--concurrency", "2",
            "--calls", "4",
            "--paced-calls", "2",
            "--pace", "0.01",
            "--callers", "20",
            "--reads", "2",
            "--burst", "3",
            "--burst-window", "1",
            "--burst-think", "0",
            "--time-limit", "120",
            "--json", str(figures),
        ]
    )  # fmt: skip
    report = json.loads(figures.read_text())
    phases = {phase["name"]: phase for phase in report["phases"]}
    assert set(phases) == {"emergency", "floor", "mixed", "emergency, paced", "burst of 3"}
    for phase in phases.values():
        assert phase["errors"] == 0, phase
        assert phase["webhooks"] > 0
    assert phases["emergency"]["bridged"] == 4
    assert phases["floor"]["webhooks"] == phases["emergency"]["webhooks"]
    assert phases["burst of 3"]["calls_on_tickets"] == 3
    assert len(report["worker_peak_rss_mib"]["ivr serve"]) == 1


def test_the_statistics_the_bench_times_are_periods_the_page_accepts(client, session, clock):
    make_staff(session)
    sign_in(client)
    paths = statistics_paths(clock.now.date())
    assert "from=2025-12-07&to=2026-12-07" in paths["statistics a year"][0]
    for path, _target in paths.values():
        assert client.get(path).status_code == 200, path


def test_the_grown_database_gives_the_statistics_something_to_measure(session, settings):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the grown database is made with PostgreSQL's generate_series")
    grow_database(
        db.engine, tickets=5000, contacts=50, organizations=5, call_logs=200, report=lambda _: None
    )
    # The grown rows are dated from PostgreSQL's clock, not the test's.
    zone = ZoneInfo(settings.timezone)
    today = session.scalar(select(func.now())).astimezone(zone).date()
    period = Period(today - timedelta(days=365), today, zone)
    office = partial(count_menu_choices, office=settings.office)
    stats = gather_statistics(session, period=period, office=office)
    assert stats.calls.count == 100 and stats.urgent_tickets == 100
    # Half the calls are answered, six in seven urgent tickets acknowledged.
    assert 40 < stats.time_to_accept.count < 60 and 80 < stats.time_to_acknowledge.count < 90
    assert len({label for label, calls in stats.office_choices if calls}) == 5
