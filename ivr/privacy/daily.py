"""Run the retention purge once a day, from one server process among all instances.

Every serving process checks from its sender round (a comparison of dates, most rounds); from
`privacy.purge_hour` on, the first to add the day's `maintenance_runs` row runs the purge, in
a thread of its own so that paging is not held up. The unique (job, day) pair lets exactly one
insert commit, on PostgreSQL as on SQLite. A process that dies while purging leaves the rest to
the next day's run: the purge goes by age, so it catches up.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import date, datetime

from flask import Flask
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.db import db, savepoint
from core.settings import Settings
from ivr.models import MaintenanceRun
from ivr.privacy.retention import apply_retention

log = logging.getLogger(__name__)

JOB = "privacy_purge"
# Who the audit trail names for the service's own purge.
SERVICE_ACTOR = "service"


def runner_name() -> str:
    """Return host:pid of this process, for the run's row."""
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


def claim_day(session: Session, *, job: str, day: date, now: datetime) -> int | None:
    """Take the day's run of a job; return its id, or None when another process has it.

    The unique (job, day) pair settles a race in a savepoint; the caller commits the claim.
    """
    run = MaintenanceRun(job=job, day=day, runner=runner_name(), started_at=now)
    try:
        with savepoint(session):
            session.add(run)
    except IntegrityError:
        return None
    return run.id


def finish_run(session: Session, run_id: int, *, summary: str, now: datetime) -> None:
    """Note that a run ended, and what it did."""
    session.execute(
        update(MaintenanceRun)
        .where(MaintenanceRun.id == run_id)
        .values(finished_at=now, summary=summary[:4000])
    )


class DailyPurge:
    """The once-a-day purge as one serving process sees it."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.checked_day: date | None = None
        self.thread: threading.Thread | None = None

    def due_day(self, settings: Settings, now: datetime) -> date | None:
        """Return the day whose purge this process should try to take now, if any."""
        privacy = settings.privacy
        local = now.astimezone(settings.zone)
        if not privacy.daily_purge or local.hour < privacy.purge_hour:
            return None
        if local.date() == self.checked_day:
            return None
        if self.thread is not None and self.thread.is_alive():
            return None
        return local.date()

    def poll(self) -> threading.Thread | None:
        """Take and start today's purge when it is due and nobody has it; call in app context."""
        settings: Settings = self.app.config["SETTINGS"]
        now = utcnow()
        day = self.due_day(settings, now)
        if day is None:
            return None
        run_id = claim_day(db.session, job=JOB, day=day, now=now)
        self.checked_day = day
        if run_id is None:
            return None
        db.session.commit()  # the claim: every other process now leaves the day to this one
        log.info("privacy: this process runs the purge of %s", day)
        self.thread = threading.Thread(
            target=self.run, args=(run_id,), name="privacy-purge", daemon=True
        )
        self.thread.start()
        return self.thread

    def run(self, run_id: int) -> None:
        """Purge, and note the run's end; a failure is logged and left to the next day."""
        with self.app.app_context():
            session = db.session
            try:
                report = apply_retention(
                    session, self.app.config["SETTINGS"], actor=SERVICE_ACTOR, now=utcnow()
                )
                finish_run(session, run_id, summary=report.summary(), now=utcnow())
                session.commit()  # the run's unit of work: the purge's last writes and its end
            except Exception:  # noqa: BLE001 - the database may be down; tomorrow tries again
                session.rollback()
                log.exception("privacy: the daily purge failed; the next one catches up")
            finally:
                db.session.remove()


def run_daily_jobs(app: Flask) -> threading.Thread | None:
    """Start the day's purge from this process when due (the sender's round calls this)."""
    daily: DailyPurge | None = app.extensions.get("daily_purge")
    if daily is None:
        return None
    try:
        return daily.poll()
    except Exception:  # noqa: BLE001 - the database may be down; the next round tries again
        db.session.rollback()
        log.warning("privacy: could not check for the daily purge", exc_info=True)
        return None


def enable_daily_purge(app: Flask) -> bool:
    """Let this serving process take part in the daily purge; return whether it is on."""
    if not app.config["SETTINGS"].privacy.daily_purge:
        return False
    app.extensions["daily_purge"] = DailyPurge(app)
    return True
