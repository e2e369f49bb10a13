"""The incident pages in Debian's Chromium, at a desk's width and a phone's (390 px).

Set IVR_SCREENSHOT_DIR to keep screenshots of the incident page and the banner.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from incident_helpers import all_incidents, make_organisations, outage_call, super_phone
from support_helpers import PASSWORD, make_staff
from werkzeug.serving import make_server

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.wall_clock,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium is missing"),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def server(app):
    app.config["SESSION_COOKIE_SECURE"] = False  # plain http on the loopback interface
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def incident(session, phone, clock):
    make_staff(session)
    make_organisations(session, 4)
    for n in (1, 2, 3, 4):
        outage_call(phone, super_phone(n))
    return all_incidents(session)[0].number


def snap(tab, name: str) -> None:
    folder = os.environ.get("IVR_SCREENSHOT_DIR")
    if folder:
        tab.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("width", [1280, 390])
def test_support_posts_an_update_and_acknowledges_on_the_incident_page(
    browser, server, incident, width
):
    context = browser.new_context(base_url=server, viewport={"width": width, "height": 900})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.goto("/support/login")
    tab.fill("input[name=email]", "agent@otys.test")
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    banner = tab.locator("#incident-notice")
    sync_api.expect(banner).to_contain_text("4 organisation(s), not acknowledged yet")
    banner.get_by_role("link").click()
    sync_api.expect(tab.locator("h1")).to_have_text(f"Incident {incident}")
    sync_api.expect(tab.locator("#incident-tickets tbody tr")).to_have_count(4)
    tab.fill("#update-form textarea", "We hebben de oorzaak gevonden.")
    tab.click("#update-form button[type=submit]")
    sync_api.expect(tab.locator("#heard")).to_have_text("We hebben de oorzaak gevonden.")
    tab.click("#acknowledge-form button[type=submit]")
    sync_api.expect(tab.locator("#acknowledged")).to_contain_text("Agent Smith")
    sync_api.expect(banner).to_contain_text("acknowledged by Agent Smith")
    snap(tab, f"incident-{width}")
    context.close()
    assert errors == []
