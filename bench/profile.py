"""Profile emergency-flow webhooks in one process: where a webhook's CPU goes.

    .venv/bin/python -m bench.profile                 # 200 calls, top 25 by own time
    .venv/bin/python -m bench.profile --calls 400 --sort cumulative --top 40

The same signed webhooks the bench sends, through Flask's test client (no gunicorn, no
admission wrapper, no sender loop) against PostgreSQL, with Prometheus in multiprocess mode
as under `ivr serve`. cProfile counts CPU time (`time.process_time`), so other work on the
machine barely moves the figures; the run also prints CPU per webhook without the profiler.
"""

from __future__ import annotations

import argparse
import atexit
import cProfile
import io
import os
import pstats
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/ivr_profile_bench"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument(
        "--plan", default="emergency-accept", help="which of the bench's calls (bench.flows)"
    )
    parser.add_argument(
        "--triage-key", default="1", help="what the caller reports: 1 an outage, 2 an urgent bug"
    )
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--output", default=None, help="also dump the raw profile here")
    parser.add_argument(
        "--statements", action="store_true", help="print the SQL one call sends, by webhook"
    )
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="ivr-profile-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    # Before anything imports prometheus_client, as `ivr serve` does.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(workdir)

    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.orm import Session

    from app import create_app
    from app.schema import upgrade_database
    from bench.flows import FlaskTransport, Twilio, place_call, standard_plans
    from bench.seed import seed_bench
    from core.settings import load_settings

    url = make_url(args.database_url)
    if "bench" not in (url.database or ""):
        raise SystemExit("refusing to recreate a database whose name lacks 'bench'")
    admin = create_engine(url.set(database="postgres").render_as_string(False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    upgrade_database(args.database_url)
    engine = create_engine(args.database_url)
    with Session(engine) as session:
        data = seed_bench(
            session, callers=2000, burst_organizations=1, burst_per_org=1, password="x" * 16
        )
    engine.dispose()

    public_url = "http://127.0.0.1:8000"
    auth_token = secrets.token_hex(16)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))}
    environ.update(
        IVR_DATABASE_URL=args.database_url,
        TWILIO_AUTH_TOKEN=auth_token,
        IVR_SECRET_KEY=secrets.token_hex(32),
        IVR_PUBLIC_URL=public_url,
        IVR_JOURNAL_PATH=str(workdir / "journal.jsonl"),
        # Paging on: outbox rows are written at call end (nothing sends them here).
        TWILIO_ACCOUNT_SID="AC" + "be4c" * 8,
        TWILIO_API_URL="http://127.0.0.1:9",
        IVR_SMS_FROM="+31612340000",
    )
    settings = load_settings(environ=environ)
    pings = count_pings()
    app = create_app(settings)
    plan = standard_plans(settings, triage_key=args.triage_key)[args.plan]
    twilio = Twilio(FlaskTransport(app.test_client()), public_url=public_url, auth_token=auth_token)
    callers = iter(data.callers)
    by_endpoint: dict[str, list[float]] = {}

    def calls(count: int) -> int:
        webhooks = 0
        for _ in range(count):
            result = place_call(twilio, plan, caller=next(callers))
            if result.error:
                raise SystemExit(f"call failed: {result.error}")
            webhooks += len(result.samples)
            for endpoint, seconds in result.samples:
                by_endpoint.setdefault(endpoint, []).append(seconds)
        return webhooks

    calls(20)  # warm up: imports, caches, prepared statements, the pool
    if args.statements:
        print_statements(app, calls)
    trips = RoundTrips(app, pings)
    by_endpoint.clear()
    started = time.process_time()
    webhooks = calls(args.calls)
    plain = (time.process_time() - started) * 1000 / webhooks
    print("time per webhook by endpoint (no profiler; the database's time included):")
    for endpoint, seconds in sorted(by_endpoint.items(), key=lambda item: -sum(item[1])):
        mean = sum(seconds) * 1000 / len(seconds)
        print(f"  {endpoint:<32}{len(seconds):>6}  {mean:6.2f} ms")
    trips.stop()
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    profiled = calls(args.calls)
    profiler.disable()
    if args.output:
        profiler.dump_stats(args.output)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    total = stats.total_tt * 1000 / profiled
    stats.sort_stats(args.sort).print_stats(args.top)
    print(
        f"{args.calls} emergency calls, {webhooks} webhooks: {plain:.2f} ms CPU per webhook "
        f"(this process, no profiler); profiled {total:.2f} ms per webhook, "
        f"{sum(v[1] for v in stats.stats.values()) / profiled:.0f} Python calls per webhook"
    )
    print_costs(stats, profiled)
    print(trips.line(args.calls))
    print(out.getvalue())
    return 0


def count_pings() -> list[int]:
    """Count the pool's pings of PostgreSQL connections (made before the app builds its engine)."""
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

    pings = [0]
    ping = PGDialect_psycopg.do_ping

    def counted(self, dbapi_connection) -> bool:
        pings[0] += 1
        return ping(self, dbapi_connection)

    PGDialect_psycopg.do_ping = counted
    return pings


class RoundTrips:
    """Count what the app sends PostgreSQL: statements, BEGIN, COMMIT, ROLLBACK and pings.

    Each is one round trip; a batch (executemany) counts once, as psycopg pipelines it.
    """

    KINDS = ("statements", "begin", "commit", "rollback")

    def __init__(self, app, pings: list[int]) -> None:
        from sqlalchemy import event

        from core.db import db

        with app.app_context():
            self.engine = db.engine
        self.pings, self.pings_before = pings, pings[0]
        self.counts = dict.fromkeys(self.KINDS, 0)
        self.listeners = {
            "before_cursor_execute": lambda *_: self._add("statements"),
            "begin": lambda _conn: self._add("begin"),
            "commit": lambda _conn: self._add("commit"),
            "rollback": lambda _conn: self._add("rollback"),
        }
        for name, listener in self.listeners.items():
            event.listen(self.engine, name, listener)

    def _add(self, kind: str) -> None:
        self.counts[kind] += 1

    def stop(self) -> None:
        from sqlalchemy import event

        for name, listener in self.listeners.items():
            event.remove(self.engine, name, listener)
        self.counts["pings"] = self.pings[0] - self.pings_before

    def line(self, calls: int) -> str:
        """Describe the round trips of one call, on average."""
        per_call = {kind: count / calls for kind, count in self.counts.items()}
        parts = ", ".join(f"{count:.1f} {kind}" for kind, count in per_call.items())
        return f"database round trips per emergency call: {sum(per_call.values()):.1f} ({parts})"


# Where a webhook's time goes, by what it does (inclusive: the ORM rows contain the driver's).
# (label, part of the file's path, function names); a name the file defines twice (Session's
# and SessionTransaction's commit) counts once, as the outer one.
COSTS = (
    ("the whole webhook in Flask", "flask/app.py", ("wsgi_app",)),
    ("the views (after the signature check)", "ivr/signatures.py", ("checked",)),
    ("Twilio's signature check", "ivr/signatures.py", ("request_is_from_twilio",)),
    ("ORM queries and DML (Session.execute)", "orm/session.py", ("_execute_internal",)),
    ("ORM flushes (unit of work)", "orm/session.py", ("_flush",)),
    ("commits (Session.commit, with its flush)", "orm/session.py", ("commit",)),
    ("connection checkouts (with the ping)", "engine/base.py", ("raw_connection",)),
    ("statements in the driver (psycopg)", "psycopg/cursor.py", ("execute",)),
    ("rendering TwiML", "twiml/__init__.py", ("to_xml",)),
    ("url_for", "flask/helpers.py", ("url_for",)),
    ("request hooks before the view", "flask/app.py", ("preprocess_request",)),
    ("request hooks after it", "flask/app.py", ("process_response", "do_teardown_appcontext")),
    ("metrics", "prometheus_client/", ("inc", "observe", "set")),
    ("logging", "logging/__init__.py", ("_log",)),
    ("phone numbers (phonenumbers)", "tickets/phones.py", ("to_e164",)),
)


def print_costs(stats: pstats.Stats, webhooks: int) -> None:
    """Print the profiled milliseconds per webhook of each kind of work in COSTS."""
    entries = stats.stats  # (file, line, function) -> (calls, primitive, own, cumulative, ...)
    print(f"{'where the time goes (profiled ms per webhook)':<48}{'ms':>7}{'share':>7}{'calls':>7}")
    for label, where, functions in COSTS:
        seconds = calls = 0.0
        for name in functions:
            found = [v for k, v in entries.items() if where in k[0] and k[2] == name]
            outer = max(found, key=lambda v: v[3], default=None)
            if outer is not None:
                seconds, calls = seconds + outer[3], calls + outer[1]
        print(
            f"  {label:<46}{seconds * 1000 / webhooks:>7.2f}{seconds / stats.total_tt:>7.0%}"
            f"{calls / webhooks:>7.1f}"
        )


def print_statements(app, calls) -> None:
    """Print every statement one emergency call sends, under the webhook that sent it."""
    from flask import has_request_context, request
    from sqlalchemy import event

    from core.db import db

    with app.app_context():
        engine = db.engine
    lines: list[str] = []

    def before(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        where = request.path if has_request_context() else "(outside a request)"
        lines.append(f"{where:<34} {' '.join(statement.split())[:150]}")

    def on_commit(_conn) -> None:
        lines.append(f"{request.path if has_request_context() else '':<34} COMMIT")

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "commit", on_commit)
    try:
        calls(1)
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "commit", on_commit)
    print(f"one emergency call: {sum(1 for x in lines if not x.endswith('COMMIT'))} statements")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
