"""Start what every serving process does besides answering requests: one home for the loops.

- the message round (`ivr.messaging.sender.tick`): due paging steps, summaries and messages;
- the daily upkeep (`ivr.privacy.daily`): the retention purge, taken by one process a day;
- the outage journal's replay (`ivr.outage.replay`), in a thread of its own;
- the helpdesk events' delivery (`ivr.messaging.helpdesk`), in a thread of its own, so a slow
  receiver never holds up a page.

The features do not start each other's work; this module does, so none of them imports another
only to be run by it.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask

from core.settings import Settings
from ivr.messaging.helpdesk import tick as deliver
from ivr.messaging.outbox import LoopThread
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


def start_background(app: Flask) -> list[threading.Thread]:
    """Start the journal replay, the message round when it could send or purge something, and
    the helpdesk delivery when a receiver is configured; return the threads started."""
    settings: Settings = app.config["SETTINGS"]
    started: list[threading.Thread] = [start_replay_thread(app)]
    rules = app.config["PAGING"]
    purges = enable_daily_purge(app)
    if rules.enabled or rules.caller_sms or purges:
        interval = settings.paging.send_interval_seconds
        started.append(
            LoopThread(app, name="message-sender", tick=background_round, interval=interval)
        )
    if settings.helpdesk.receivers:
        interval = settings.helpdesk.send_interval_seconds
        started.append(LoopThread(app, name="helpdesk-sender", tick=deliver, interval=interval))
    for thread in started[1:]:
        thread.start()
    return started
