"""Drive the support dashboard in Debian's Chromium: sign in, live alert, a ticket's lifecycle.

Set IVR_SCREENSHOT_DIR to keep screenshots of the list and the ticket page.
"""

import os
import re
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from helpers import EMERGENCY_NUMBER, dialled
from support_helpers import PASSWORD, make_call_ticket, make_organization, make_staff, make_ticket
from werkzeug.serving import make_server

from core.clock import utcnow
from tickets import pin_guard
from tickets.models import Contact, ContactPhone, Organization, TicketCall
from tickets.oncall.imports import import_level

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.wall_clock,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's Chromium (/usr/bin/chromium) is missing"
    ),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def server(app):
    """Serve the app on 127.0.0.1 on a free port in a thread, as a browser sees it."""
    app.config["SESSION_COOKIE_SECURE"] = False  # plain http on the loopback interface
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def page(browser, server):
    context = browser.new_context(base_url=server, viewport={"width": 1360, "height": 900})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert errors == [], f"JavaScript errors: {errors}"


def screenshot(page, name: str) -> None:
    folder = os.environ.get("IVR_SCREENSHOT_DIR")
    if folder:
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def sign_in(page, email: str = "agent@otys.test") -> None:
    page.goto("/support")
    expect(page).to_have_url(re.compile(r"/support/login"))
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Tickets")).to_be_visible()


def test_wrong_password_is_refused_politely(page, session):
    make_staff(session)
    page.goto("/support/login")
    page.get_by_label("E-mail address").fill("agent@otys.test")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert").filter(has_text="did not work")).to_be_visible()
    page.goto("/support")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_new_urgent_ticket_appears_on_the_open_list_without_reload(page, session):
    make_staff(session)
    acme = make_organization(session, "Acme Recruitment")
    make_ticket(session, priority="normal", reason=None, status="in_progress")
    first = make_call_ticket(session, organization=acme)
    sign_in(page)
    rows = page.locator("#queue tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text(first.number)
    page.get_by_role("button", name="Sound off").click()
    expect(page.locator("#sound-toggle")).to_have_attribute("aria-pressed", "true")
    page.evaluate("window.__loaded = true")  # gone if the page reloads

    globex = make_organization(session, "Globex Staffing")
    fresh = make_ticket(session, organization=globex, reason="urgent_bug", caller="+31201112233")
    row = page.locator(f'#queue tr[data-ticket-id="{fresh.id}"]')
    expect(row).to_be_visible(timeout=15_000)
    expect(rows.first).to_contain_text(fresh.number)
    expect(row).to_contain_text("Globex Staffing")
    alert = page.locator("#live-alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text(f"Urgent ticket {fresh.number}")
    expect(page).to_have_title(re.compile(r"^\(1\) New urgent ticket"))
    assert page.evaluate("window.__loaded") is True
    screenshot(page, "support-list.png")

    page.get_by_role("button", name="Dismiss the alert").click()
    expect(alert).to_be_hidden()
    expect(page).to_have_title("Tickets · OTYS support")


def test_a_pause_of_pin_checks_shows_on_the_open_list_without_reload(page, session):
    make_staff(session)
    sign_in(page)
    notice = page.locator("#line-notice")
    expect(notice).to_be_hidden()
    page.evaluate("window.__loaded = true")  # gone if the page reloads

    pause = pin_guard.pause_pin_checks(
        session, failures=20, numbers=7, window_minutes=15, minutes=60, now=utcnow()
    )
    session.commit()
    expect(notice).to_be_visible(timeout=15_000)
    expect(notice).to_contain_text("PIN checks on the emergency line are paused until")
    expect(notice).to_contain_text("20 wrong PINs within 15 minutes, from 7 numbers")
    assert page.evaluate("window.__loaded") is True

    pause.paused_until = utcnow()
    session.commit()
    expect(notice).to_be_hidden(timeout=15_000)


def test_ticket_lifecycle_in_the_browser(page, session):
    make_staff(session)
    acme = make_organization(session, "Acme Recruitment")
    ticket = make_call_ticket(session, organization=acme)
    sign_in(page)
    page.get_by_role("link", name=ticket.number).click()
    expect(page.get_by_role("heading", name=f"Ticket {ticket.number}")).to_be_visible()
    for fact in ("Petra de Boer", "Super user", "Acme Recruitment", "Engineer accepted"):
        expect(page.locator("main")).to_contain_text(fact)
    expect(page.locator("audio").first).to_have_attribute(
        "src", f"/support/recordings/{ticket.calls[0].id}"
    )
    status = page.locator("#ticket-status")
    expect(status).to_contain_text("New")
    screenshot(page, "support-ticket.png")

    page.get_by_role("button", name="Acknowledge & assign to me").click()
    expect(page.locator("#acknowledged")).to_contain_text("by Agent Smith")
    expect(page.locator("#assigned")).to_contain_text("Agent Smith")
    expect(status).to_contain_text("In progress")

    question = page.get_by_label("Question asked to the customer")
    week = page.get_by_label("Release week (YYYY-Www)").first
    rating = page.get_by_label("Customer's rating")

    def change(to: str, label: str, fill=None) -> None:
        page.get_by_label("New status").select_option(to)
        if fill:
            fill()
        page.get_by_role("button", name="Change status").click()
        expect(status).to_contain_text(label)
        expect(page.get_by_role("status").filter(has_text="Status changed")).to_be_visible()

    page.get_by_label("New status").select_option("waiting_for_customer")
    expect(question).to_be_visible()
    expect(rating).to_be_hidden()
    change(
        "waiting_for_customer",
        "Waiting for the customer",
        lambda: question.fill("Which vacancies are missing?"),
    )
    expect(page.locator("main")).to_contain_text("Which vacancies are missing?")
    change("in_progress", "In progress")
    change("with_product_team", "With the product team")
    page.get_by_label("New status").select_option("planned")
    expect(week).to_have_value(re.compile(r"^\d{4}-W\d{2}$"))
    change("planned", "Planned for release", lambda: week.fill("2030-W22"))
    expect(page.locator("#release-week")).to_contain_text("2030-W22")
    change("resolved", "Resolved")

    page.get_by_label("New status").select_option("closed")
    page.get_by_role("button", name="Change status").click()
    expect(page.get_by_role("alert").filter(has_text="rating")).to_be_visible()
    expect(status).to_contain_text("Resolved")

    def rate() -> None:
        rating.select_option("4")
        page.get_by_label("Customer's comment").fill("Solved before lunch")

    change("closed", "Closed", rate)
    expect(page.locator("#rating")).to_contain_text("4 / 5")
    expect(page.locator("#rating")).to_contain_text("Solved before lunch")
    expect(page.locator("#history")).to_contain_text("Resolved → Closed; rating 4")
    screenshot(page, "support-ticket-closed.png")

    page.get_by_role("link", name="← Tickets").click()
    row = page.locator(f'#queue tr[data-ticket-id="{ticket.id}"]')
    expect(row).to_contain_text("Closed")
    expect(row.get_by_label("rated 4 out of 5")).to_be_visible()


def test_on_call_page_shows_the_week_takes_an_override_and_it_rings(page, session, clock, phone):
    make_staff(session, email="admin@otys.test", name="Ada Admin", role="admin")
    make_staff(session, email="anna@otys.test", name="Anna Jansen", phone="+31620000001")
    make_staff(session, email="carla@otys.test", name="Carla Smit", phone="+31620000003")
    acme = Organization(name="Acme Recruitment")
    petra = Contact(organization=acme, name="Petra de Boer", email="p@acme.test", role="super_user")
    petra.phones.append(ContactPhone(number="+31611110000"))
    session.add(acme)
    session.commit()
    week = (
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//EN\nBEGIN:VEVENT\nUID:a\n"
        "DTSTAMP:20261101T000000Z\nDTSTART;TZID=Europe/Amsterdam:20261207T090000\n"
        "DTEND;TZID=Europe/Amsterdam:20261214T090000\nSUMMARY:Anna Jansen\nEND:VEVENT\n"
        "END:VCALENDAR\n"
    )
    import_level(
        session, week.encode(), level=1, zone=clock.now.tzinfo, now=clock.now, horizon_days=30
    )
    session.commit()

    sign_in(page, "admin@otys.test")
    page.get_by_role("link", name="On call").click()
    expect(page.get_by_role("heading", name="On call")).to_be_visible()
    expect(page.locator("#now-level-1")).to_contain_text("Anna Jansen")
    expect(page.locator("#rota-level-1")).to_contain_text("Anna Jansen")
    screenshot(page, "support-oncall.png")

    page.get_by_label("Level").select_option("1")
    page.get_by_label("Engineer").select_option(label="Carla Smit (+31620000003)")
    page.get_by_label("From (local time)").fill("2026-12-07T09:30")
    page.get_by_label("Until (local time)").fill("2026-12-07T18:00")
    page.get_by_role("button", name="Add override").click()
    expect(page.get_by_role("status").filter(has_text="Carla Smit covers level 1")).to_be_visible()
    expect(page.locator("#now-level-1")).to_contain_text("Carla Smit")
    expect(page.locator("#now-level-1")).not_to_contain_text("Anna Jansen")
    expect(page.locator("#overrides")).to_contain_text("Carla Smit")

    call = phone(to=EMERGENCY_NUMBER, from_="+31611110000")
    root = call.press(call.start(), "1")
    assert dialled(root) == ["+31620000003"]


def test_an_admin_deactivates_someone_on_the_staff_page(page, session):
    make_staff(session, email="admin@otys.test", name="Ada Admin", role="admin")
    anna = make_staff(session, email="anna@otys.test", name="Anna Jansen", phone="+31620000001")
    sign_in(page, "admin@otys.test")
    page.get_by_role("link", name="Staff", exact=True).click()
    expect(page.get_by_role("heading", name="Staff", exact=True)).to_be_visible()
    page.get_by_role("link", name="Anna Jansen").click()
    expect(page.get_by_role("heading", name="Anna Jansen")).to_be_visible()
    page.get_by_role("button", name="Deactivate").click()
    expect(page.get_by_role("status").filter(has_text="Anna Jansen is deactivated")).to_be_visible()
    expect(page.get_by_role("button", name="Reactivate")).to_be_visible()
    screenshot(page, "support-staff-account.png")
    page.get_by_role("link", name="Staff", exact=True).click()
    expect(page.locator(f"#staff-{anna.id}")).to_contain_text("Deactivated")
    screenshot(page, "support-staff.png")


def test_statistics_page_draws_its_charts(page, session, clock):
    make_staff(session)
    acme = make_organization(session, "Acme Recruitment")
    for day, outcome, engineer in (
        (1, "answered", "Eva"),
        (1, "voicemail", None),
        (2, "answered", "Bram"),
        (3, "refused", None),
    ):
        started = datetime(2026, 12, day, 9, 15, tzinfo=clock.now.tzinfo)
        ticket = make_ticket(session, organization=acme, created_at=started)
        session.add(
            TicketCall(
                ticket_id=ticket.id,
                sid=f"CA{day:02d}{outcome:0>30}",
                line="emergency",
                outcome=outcome,
                started_at=started,
                answered_at=started + timedelta(seconds=25) if engineer else None,
                answered_by=engineer,
            )
        )
    session.commit()
    refused = []
    page.on(
        "console",
        lambda message: "Content Security Policy" in message.text and refused.append(message.text),
    )
    sign_in(page)
    page.get_by_role("link", name="Statistics").click()
    expect(page.get_by_role("heading", name="Statistics", exact=True)).to_be_visible()
    expect(page.locator("#calls-count")).to_have_text("4")
    expect(page.locator("#answer-rate")).to_have_text("50.0 %")
    for chart in ("days", "heat", "organisations", "engineers", "office"):
        canvas = page.locator(f"#chart-{chart}")
        expect(canvas).to_be_visible()
        page.wait_for_function(
            "id => { const c = window.Chart && window.Chart.getChart(id);"
            " return c && c.chartArea && c.chartArea.width > 100; }",
            arg=f"chart-{chart}",
        )
        # Something was painted: the canvas is not blank.
        assert page.evaluate(
            "id => { const c = document.getElementById(id);"
            " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            " for (let i = 3; i < d.length; i += 4) { if (d[i]) return true; } return false; }",
            f"chart-{chart}",
        ), chart
    heat = page.evaluate("window.Chart.getChart('chart-heat').data.datasets[0].data.length")
    assert heat == 7 * 24
    page.wait_for_timeout(1500)
    screenshot(page, "support-statistics.png")
    page.get_by_text("The figures as a table").nth(1).click()
    expect(page.locator("#heat-table")).to_be_visible()
    expect(page.get_by_role("link", name="Download CSV")).to_have_attribute(
        "href", "/support/statistics.csv?from=2026-11-08&to=2026-12-07"
    )
    assert refused == []
