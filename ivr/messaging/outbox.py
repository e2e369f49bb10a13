"""What every outbox sender shares: claiming safely, recording a result, backing off, its thread.

An outbox row has a status, an attempt count, a lease and a version column. Claims lock rows
with `FOR UPDATE SKIP LOCKED` on PostgreSQL, and the version column makes a write that lost a
race to another process fail instead of acting twice (SQLite too). The paging sender
(`ivr.messaging.sender`) and the helpdesk sender (`ivr.messaging.helpdesk`) both build on this.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from flask import Flask
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

log = logging.getLogger(__name__)

LOST_RACE = (StaleDataError, OperationalError)
Row = TypeVar("Row")


def commit_or_skip(session: Session) -> bool:
    """Commit; when another process changed the same rows first, roll back and say so."""
    try:
        session.commit()
    except LOST_RACE:
        session.rollback()
        return False
    return True


def record(session: Session, model: type[Row], row_id: int, change: Callable[[Row], None]) -> None:
    """Apply `change` to the row as it is now and commit; once more if another write raced us."""
    for _ in range(2):
        row = session.get(model, row_id, populate_existing=True)
        change(row)
        if commit_or_skip(session):
            return


def backoff(attempts: int, *, first: float, longest: float, jitter: float = 0.0) -> timedelta:
    """Return the wait before attempt `attempts + 1`: `first`, doubling, at most `longest`.

    With `jitter` (0 to 1), up to that share of the wait is taken off at random, so receivers
    that failed together are not all tried again at the same moment.
    """
    seconds = min(first * 2 ** max(0, attempts - 1), longest)
    return timedelta(seconds=seconds * (1 - jitter * random.random()))


class LoopThread(threading.Thread):
    """A background thread of one server process: run `tick(app)` every `interval` seconds."""

    def __init__(self, app: Flask, *, name: str, tick: Callable[[Flask], object], interval: float):
        super().__init__(name=name, daemon=True)
        self.app, self.tick, self.interval = app, tick, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        """Tick until stopped; a failed round is logged and the next one tries again."""
        while not self.stopped.wait(self.interval):
            try:
                self.tick(self.app)
            except Exception:  # noqa: BLE001 - the database may be down; try again next round
                log.exception("%s round failed", self.name)

    def stop(self) -> None:
        """Ask the thread to finish after its current round."""
        self.stopped.set()
