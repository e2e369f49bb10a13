"""Start what every serving process does besides answering requests: one home for the loops.

- the message round (`ivr.messaging.sender.tick`): due paging steps, summaries and messages;
- the daily upkeep (`ivr.privacy.daily`): the retention purge, taken by one process a day;
- the outage journal's replay (`ivr.outage.replay`), in a thread of its own.

The features do not start each other's work; this module does, so none of them imports another
only to be run by it.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask

from ivr.messaging.sender import TickReport, tick
from ivr.outage.replay import start_replay_thread
from ivr.privacy.daily import enable_daily_purge, run_daily_jobs

log = logging.getLogger(__name__)


def background_round(app: Flask) -> TickReport:
    """Run one round: send what is due, then start the day's upkeep when it is due."""
    report = tick(app)
    with app.app_context():
        run_daily_jobs(app)
    return report


class BackgroundLoop(threading.Thread):
    """Background thread of one server process: a round every `send_interval_seconds`."""

    def __init__(self, app: Flask) -> None:
        super().__init__(name="message-sender", daemon=True)
        self.app = app
        self.stopped = threading.Event()

    def run(self) -> None:
        """Run rounds until stopped; a failed round is logged and the next one tries again."""
        interval = self.app.config["SETTINGS"].paging.send_interval_seconds
        while not self.stopped.wait(interval):
            try:
                background_round(self.app)
            except Exception:  # noqa: BLE001 - the database may be down; try again next round
                log.exception("background round failed")

    def stop(self) -> None:
        """Ask the thread to finish after its current round."""
        self.stopped.set()


def start_background(app: Flask) -> BackgroundLoop | None:
    """Start the journal replay, and the round loop when it could send or purge something."""
    start_replay_thread(app)
    rules = app.config["PAGING"]
    purges = enable_daily_purge(app)
    if not (rules.enabled or rules.caller_sms or purges):
        return None
    loop = BackgroundLoop(app)
    loop.start()
    return loop
