"""Metrics in production shape: `ivr serve` with two gevent workers, scraped over HTTP.

Every worker counts its own calls; `/metrics` must add them all up whichever worker answers,
also after a worker died and gunicorn started another.
"""

from __future__ import annotations

import os
import re
import signal
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from helpers import OFFICE_NUMBER, PUBLIC_URL, sign
from metrics_helpers import parse_samples, value
from real_servers import IvrServer, children_of, empty_tables, wait_until, write_config

from app.schema import upgrade_database

pytestmark = pytest.mark.wall_clock

WORKERS = 2
MOST_CALLS = 120


@pytest.fixture
def server(tmp_path):
    url = os.environ.get("IVR_TEST_DATABASE_URL") or f"sqlite:///{tmp_path / 'metrics.sqlite3'}"
    upgrade_database(url)
    empty_tables(url)
    served = IvrServer(tmp_path / "serve", url, config=write_config(tmp_path), workers=WORKERS)
    try:
        yield served.start()
    finally:
        served.stop()
        empty_tables(url)


def post(server: IvrServer, path: str, form: dict) -> requests.Response:
    """Post a signed webhook on a connection of its own, so either worker may take it."""
    headers = {"X-Twilio-Signature": sign(PUBLIC_URL + path, form), "Connection": "close"}
    return requests.post(server.base_url + path, data=form, headers=headers, timeout=10)


def office_call(server: IvrServer) -> None:
    """An office call that hangs up at the menu."""
    form = {"CallSid": "CA" + uuid.uuid4().hex, "To": OFFICE_NUMBER, "From": "+31612345678"}
    assert post(server, "/voice/incoming", {**form, "CallStatus": "ringing"}).status_code == 200
    ended = {**form, "CallStatus": "completed", "CallDuration": "4"}
    assert post(server, "/voice/status", ended).status_code == 204


def scrape(server: IvrServer) -> dict:
    response = requests.get(
        server.base_url + "/metrics", headers={"Connection": "close"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return parse_samples(response.text)


def workers(server: IvrServer) -> set[int]:
    return set(children_of(server.process.pid))


def workers_that_counted(server: IvrServer) -> set[int]:
    """Return the pids of the workers that wrote metric files: each timed a webhook."""
    directory = server.workdir / "var" / "metrics" / f"127.0.0.1_{server.port}"
    found = (re.fullmatch(r"histogram_(\d+)\.db", p.name) for p in directory.iterdir())
    return {int(match.group(1)) for match in found if match}


def calls_total(samples: dict) -> float:
    return value(samples, "ivr_calls_total", line="office", outcome="abandoned")


def test_every_workers_calls_are_counted_whichever_worker_answers(server):
    made = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        # Calls on connections of their own, eight at a time, until both workers served some.
        while len(workers_that_counted(server) & workers(server)) < WORKERS:
            assert made < MOST_CALLS, "one worker took every call"
            list(pool.map(lambda _: office_call(server), range(8)))
            made += 8
    for _ in range(10):  # each scrape is answered by either worker
        samples = scrape(server)
        assert calls_total(samples) == made
        assert (
            value(samples, "ivr_webhook_duration_seconds_count", webhook="voice.incoming") == made
        )
        assert value(samples, "ivr_database_up") == 1

    # A worker that dies takes nothing with it; gunicorn's replacement counts on from there.
    victim = min(workers(server))
    os.kill(victim, signal.SIGKILL)
    wait_until(
        lambda: len(workers(server)) == WORKERS and victim not in workers(server),
        timeout=30,
        what="gunicorn to replace the worker",
    )
    office_call(server)
    for _ in range(4):
        assert calls_total(scrape(server)) == made + 1
