"""The dashboard on a phone: every page fits 390 px, the menu folds, Acknowledge is one tap.

The data is the screenshots' (`bench.screenshots.seed`): long organisation and people's names,
a Dutch voicemail with a long recording address, sixty tickets, a rota shift nobody can be
reached on. Debian's Chromium, driven by Playwright, at 390 x 844 and at 1280 x 900.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from bench.screenshots import DESKTOP, PHONE, dashboard_pages, seed

CHROMIUM = Path("/usr/bin/chromium")

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
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def showcase(app):
    return seed(app)


@pytest.fixture
def server(app, showcase):
    app.config["SESSION_COOKIE_SECURE"] = False  # plain http on the loopback interface
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=10)


def open_tab(browser, server, viewport):
    context = browser.new_context(base_url=server, viewport=viewport, has_touch=True)
    context.set_default_timeout(10_000)
    return context, context.new_page()


def sign_in(page, showcase) -> None:
    page.goto("/support/login")
    page.get_by_label("E-mail address").fill(showcase.admin)
    page.get_by_label("Password").fill(showcase.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Tickets")).to_be_visible()


def width_of(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_every_dashboard_page_fits_a_phone(browser, server, showcase):
    context, page = open_tab(browser, server, PHONE)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    missing: list[str] = []
    page.on("response", lambda r: r.status == 404 and missing.append(r.url))
    sign_in(page, showcase)
    too_wide = {}
    for name, path in dashboard_pages(showcase).items():
        page.goto(path)
        page.wait_for_load_state("networkidle")
        if width_of(page) > PHONE["width"]:
            too_wide[name] = width_of(page)
    assert too_wide == {}, f"wider than the screen at 390 px: {too_wide}"
    assert errors == [] and missing == []
    context.close()


def test_the_menu_folds_and_opens_on_a_phone(browser, server, showcase):
    context, page = open_tab(browser, server, PHONE)
    sign_in(page, showcase)
    menu = page.get_by_role("button", name="Menu")
    staff = page.get_by_role("link", name="Staff", exact=True)
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(staff).to_be_hidden()
    menu.tap()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(staff).to_be_visible()
    # Every link sits inside the dark bar: none spills onto the light page.
    bar = page.locator(".topbar").bounding_box()
    for link in page.locator(".topbar nav a").all():
        box = link.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        assert bar["y"] <= box["y"] and box["y"] + box["height"] <= bar["y"] + bar["height"]
    staff.tap()
    expect(page.get_by_role("heading", name="Staff", exact=True)).to_be_visible()
    context.close()


def test_the_engineer_reads_the_voicemail_and_acknowledges_with_one_tap(browser, server, showcase):
    context, page = open_tab(browser, server, PHONE)
    sign_in(page, showcase)
    page.goto(f"/support/tickets/{showcase.ticket}")
    summary = page.locator("#summary")
    expect(summary).to_contain_text("Uitzendorganisatie Noord-Holland")
    expect(summary).to_contain_text("Major outage")  # the outage call outranks the urgent bug
    expect(summary).to_contain_text("Niemand van ons kan nog inloggen")
    expect(summary.locator("audio")).to_be_visible()
    button = summary.get_by_role("button", name="Acknowledge & assign to me")
    box = button.bounding_box()
    # On the first screen, under the banners, whole: no sideways scrolling to reach it.
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert box["y"] + box["height"] <= PHONE["height"]
    button.tap()
    expect(page.locator("#acknowledged-by")).to_contain_text("by Alexandra van der Berg-Huisman")
    expect(page.locator("#ticket-status")).to_contain_text("In progress")
    expect(page.get_by_role("button", name="Acknowledge & assign to me")).to_have_count(0)
    context.close()


def test_the_desktop_keeps_its_width(browser, server, showcase):
    context, page = open_tab(browser, server, DESKTOP)
    sign_in(page, showcase)
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    nav = page.locator(".topbar nav")
    assert nav.bounding_box()["height"] < 50  # one row of links
    for name, path in dashboard_pages(showcase).items():
        page.goto(path)
        assert width_of(page) <= DESKTOP["width"], name
    context.close()
