"""Time what support reads: the dashboard and API lists (logged in through the form), statistics."""

from __future__ import annotations

import time
from datetime import date, timedelta
from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin

import requests

from tickets.statistics.period import MAX_DAYS

# The Statistics page aggregates a whole period, not one page of rows, and is opened now and
# then, not polled: its own targets, still well within what reads as immediate.
STATISTICS_30_DAYS_P95_MS = 250.0
STATISTICS_YEAR_P95_MS = 1000.0


class Unavailable(Exception):
    """The page or endpoint to time does not exist (yet) or refused the bench."""


class _Forms(HTMLParser):
    """Collect the forms of a page with their inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append({"action": values.get("action", ""), "inputs": []})
        elif tag == "input" and self.forms:
            self.forms[-1]["inputs"].append(values)


def login(session: requests.Session, base: str, *, email: str, password: str) -> None:
    """Log in through the dashboard's own login form, CSRF token included."""
    page = session.get(base + "/support", timeout=15)
    if page.status_code == 404:
        raise Unavailable("GET /support answers 404")
    parser = _Forms()
    parser.feed(page.text)
    form = next(
        (f for f in parser.forms if any(i.get("type") == "password" for i in f["inputs"])), None
    )
    if form is None:
        raise Unavailable(f"no login form at {page.url} (HTTP {page.status_code})")
    data = {}
    for field in form["inputs"]:
        name, kind = field.get("name"), field.get("type", "text")
        if not name or kind in ("submit", "button", "checkbox"):
            continue
        if kind == "password":
            data[name] = password
        elif kind == "email" or "email" in name or "user" in name:
            data[name] = email
        else:
            data[name] = field.get("value", "")
    answer = session.post(urljoin(page.url, form["action"] or page.url), data=data, timeout=15)
    if answer.status_code >= 400:
        raise Unavailable(f"login answered HTTP {answer.status_code}")
    check = session.get(base + "/support", timeout=15)
    if check.status_code != 200 or 'type="password"' in check.text:
        raise Unavailable("the login form did not log the bench in")


def time_requests(
    session: requests.Session, url: str, *, count: int, deadline: float, expect_json: bool
) -> tuple[list[float], list[str]]:
    """GET `url` `count` times one after another; return the latencies and any errors."""
    latencies, errors = [], []
    for _ in range(count):
        if time.monotonic() > deadline:
            errors.append("time limit reached")
            break
        started = time.perf_counter()
        response = session.get(url, timeout=15)
        body = response.content
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            errors.append(f"HTTP {response.status_code}")
            if response.status_code in (401, 403, 404):
                break
        elif expect_json and not body.lstrip().startswith(b"{"):
            errors.append("not JSON")
    return latencies, errors


def time_support_reads(
    base: str, *, email: str, password: str, token: str, count: int, deadline: float
) -> dict[str, dict]:
    """Time the dashboard list and the API list (plain and filtered) at the database's size."""
    results: dict[str, dict] = {}
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    for label, path in (
        ("API list", "/api/tickets?per_page=50"),
        ("API list filtered", "/api/tickets?priority=urgent&status=new&per_page=50"),
    ):
        probe = api.get(base + path, timeout=15)
        if probe.status_code != 200:
            results[label] = {"path": path, "unavailable": f"HTTP {probe.status_code}"}
            continue
        latencies, errors = time_requests(
            api, base + path, count=count, deadline=deadline, expect_json=True
        )
        results[label] = {"path": path, "latencies": latencies, "errors": errors}
    dashboard = requests.Session()
    try:
        login(dashboard, base, email=email, password=password)
    except (Unavailable, requests.RequestException) as exc:
        results["dashboard list"] = {"path": "/support", "unavailable": str(exc)}
        return results
    latencies, errors = time_requests(
        dashboard, base + "/support", count=count, deadline=deadline, expect_json=False
    )
    results["dashboard list"] = {"path": "/support", "latencies": latencies, "errors": errors}
    results.update(time_statistics(dashboard, base, count=count, deadline=deadline))
    return results


def statistics_paths(today: date) -> dict[str, tuple[str, float]]:
    """Return the statistics pages to time, with their path and p95 target in milliseconds."""
    year = {"from": (today - timedelta(days=MAX_DAYS - 1)).isoformat(), "to": today.isoformat()}
    return {
        "statistics 30 days": ("/support/statistics", STATISTICS_30_DAYS_P95_MS),
        "statistics a year": (f"/support/statistics?{urlencode(year)}", STATISTICS_YEAR_P95_MS),
        "statistics CSV year": (
            f"/support/statistics.csv?{urlencode(year)}",
            STATISTICS_YEAR_P95_MS,
        ),
    }


def time_statistics(
    dashboard: requests.Session, base: str, *, count: int, deadline: float
) -> dict[str, dict]:
    """Time the Statistics page (30 days and a year) and its CSV, a tenth as often as lists."""
    results: dict[str, dict] = {}
    for label, (path, target) in statistics_paths(date.today()).items():
        latencies, errors = time_requests(
            dashboard, base + path, count=max(5, count // 10), deadline=deadline, expect_json=False
        )
        results[label] = {
            "path": path,
            "latencies": latencies,
            "errors": errors,
            "target_ms": target,
        }
    return results
