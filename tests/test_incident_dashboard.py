"""Major incidents in the dashboard and from the command line: the pages, the banner on every
page, opening, updating, acknowledging and resolving; `ivr incident open|update|resolve|list`."""

from __future__ import annotations

import pytest
from incident_helpers import all_incidents, make_organisations, outage_call, super_phone
from sqlalchemy import select
from support_helpers import make_staff, page_token, sign_in

from tickets.models import Announcement, Ticket


@pytest.fixture
def agent(session):
    return make_staff(session, phone="+31620000009")


@pytest.fixture
def signed_in(client, agent):
    sign_in(client)
    return client


@pytest.fixture
def reports(session, clock, phone):
    make_organisations(session, 4)
    for n in (1, 2, 3):
        outage_call(phone, super_phone(n))
    [incident] = all_incidents(session)
    return incident.number


def post(client, path: str, **data):
    data["csrf_token"] = page_token(client, "/support/incidents")
    return client.post(path, data=data)


def test_every_page_shows_the_banner_while_an_incident_is_open(signed_in, reports):
    for path in ("/support", "/support/callbacks", "/support/statistics"):
        html = signed_in.get(path).get_data(as_text=True)
        assert 'id="incident-notice"' in html, path
        assert "3 organisation(s), not acknowledged yet" in html
        assert f'href="/support/incidents/{reports}"' in html


def test_no_banner_without_an_open_incident(signed_in, session):
    assert 'id="incident-notice"' not in signed_in.get("/support").get_data(as_text=True)


def test_the_incident_page_shows_organisations_tickets_and_the_timeline(
    signed_in, session, reports
):
    html = signed_in.get(f"/support/incidents/{reports}").get_data(as_text=True)
    for name in ("Klant 01", "Klant 02", "Klant 03"):
        assert name in html
    tickets = session.scalars(select(Ticket).order_by(Ticket.id)).all()
    assert all(f"/support/tickets/{ticket.number}" in html for ticket in tickets)
    assert "Organisation joined" in html and "not yet" in html


def test_the_ticket_page_links_to_its_incident(signed_in, session, reports):
    ticket = session.scalar(select(Ticket).order_by(Ticket.id))
    html = signed_in.get(f"/support/tickets/{ticket.number}").get_data(as_text=True)
    assert f"Part of incident {reports}" in html


def test_support_updates_acknowledges_and_resolves_from_the_page(
    signed_in, session, reports, agent
):
    path = f"/support/incidents/{reports}"
    answer = post(signed_in, f"{path}/updates", text="We werken eraan.")
    assert answer.status_code == 303
    answer = post(signed_in, f"{path}/acknowledge")
    assert answer.status_code == 303
    html = signed_in.get(path).get_data(as_text=True)
    assert "We werken eraan." in html and f"by {agent.name}" in html
    answer = post(signed_in, f"{path}/resolve", text="Opgelost.", resolve_tickets="y")
    assert answer.status_code == 303
    [incident] = all_incidents(session)
    assert incident.status == "resolved" and incident.acknowledged_by_id == agent.id
    assert {t.status for t in session.scalars(select(Ticket))} == {"resolved"}
    assert 'id="incident-notice"' not in signed_in.get("/support").get_data(as_text=True)
    refused = post(signed_in, f"{path}/updates", text="Te laat.")
    assert refused.status_code == 409


def test_an_empty_update_is_refused_and_changes_nothing(signed_in, session, reports):
    answer = post(signed_in, f"/support/incidents/{reports}/updates", text="  ")
    assert answer.status_code == 400
    assert [u.kind for u in all_incidents(session)[0].updates].count("update") == 0


def test_support_opens_one_by_hand_with_the_announcement_filled_in(signed_in, session, clock):
    session.add(Announcement(text_nl="Inloggen lukt bij niemand."))
    session.commit()
    html = signed_in.get("/support/incidents").get_data(as_text=True)
    assert "Inloggen lukt bij niemand." in html
    answer = post(signed_in, "/support/incidents", summary="Inloggen lukt bij niemand.")
    assert answer.status_code == 303
    [incident] = all_incidents(session)
    assert (
        incident.summary == "Inloggen lukt bij niemand." and incident.opened_by == "agent@otys.test"
    )
    again = post(signed_in, "/support/incidents", summary="Nog een")
    assert again.status_code in (200, 409)
    assert len(all_incidents(session)) == 1


def test_an_unknown_incident_is_not_found(signed_in):
    assert signed_in.get("/support/incidents/77").status_code == 404


# ------------------------------------------------------------------ the command line


def test_the_commands_open_update_list_and_resolve(cli, session, reports):
    [incident] = all_incidents(session)
    number = incident.number
    refused = cli("incident", "open", "Nog een storing")
    assert refused.exit_code == 1 and f"Incident {number} is open" in refused.output
    result = cli("incident", "update", str(number), "Oorzaak gevonden.")
    assert result.exit_code == 0, result.output
    assert f"incident {number}: update posted" in result.output
    listed = cli("incident", "list")
    assert listed.output.startswith(f"{number}\topen\t")
    assert "3 ticket(s)\t3 organisation(s)" in listed.output
    result = cli("incident", "resolve", str(number), "Alles werkt weer.", "--resolve-tickets")
    assert result.exit_code == 0 and f"incident {number} resolved" in result.output
    session.expire_all()
    [incident] = all_incidents(session)
    assert incident.status == "resolved" and incident.resolved_by.startswith("cli:")
    assert [u.text for u in incident.updates if u.kind in ("update", "resolved")] == [
        "Oorzaak gevonden.",
        "Alles werkt weer.",
    ]
    again = cli("incident", "resolve", str(number))
    assert again.exit_code == 1 and "already resolved" in again.output
    assert cli("incident", "update", "999", "x").exit_code == 1


def test_the_open_command_opens_one_and_says_its_number(cli, session):
    result = cli("incident", "open", "Storing bij inloggen")
    assert result.exit_code == 0, result.output
    [incident] = all_incidents(session)
    assert result.output.startswith(f"incident {incident.number} opened")
    assert cli("incident", "open", "   ").exit_code == 1


def test_the_statistics_count_incidents_their_acknowledgement_reach_and_calls(
    signed_in, session, clock, phone, reports, agent
):
    from datetime import timedelta

    outage_call(phone, super_phone(2))  # a second call of Klant 02
    clock.now += timedelta(minutes=4)
    post(signed_in, f"/support/incidents/{reports}/acknowledge")
    html = signed_in.get("/support/statistics").get_data(as_text=True)
    assert 'id="incidents-count">1<' in html
    assert 'id="incidents-organisations">3<' in html
    assert 'id="incidents-calls">4.0<' in html
    assert "4 min" in html
    csv = signed_in.get("/support/statistics.csv").get_data(as_text=True)
    assert "incidents,,all,1" in csv and f"incident,{reports},calls,4" in csv
