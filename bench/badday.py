"""A bad day for the line: support traffic and a sign-in flood while super users call.

`python -m bench.badday` (`make badday`) starts a real `ivr serve` (gunicorn, gevent workers) on
PostgreSQL, in a database of its own (`ivr_badday_bench`, grown to 1,000,000 tickets unless told
otherwise), and keeps known super users calling the emergency line, signed like Twilio, while
other threads load the service the way the review of issue 19 did, one phase at a time:

- `calm`: the calls alone;
- `api`: loops of `GET /api/tickets?per_page=500`, deep pages included;
- `dashboard`: signed-in sessions paging deep through `/support`;
- `sign-ins`: failed sign-ins with random e-mail addresses, half from many sources (through
  the trusted proxy 127.0.0.1), half from one;
- `lock`: a long transaction holds a lock on the sign-in table while sign-ins arrive;
- `all`: everything at once.

Each phase prints how many calls were recognised and how many were served through the outage
path (the target is 0: the database stays healthy throughout, a probe shows it), how fast the
webhooks answered, and what the support traffic was answered. Exit status 1 when a call went
through the outage path or failed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, func, make_url, select, text
from sqlalchemy.orm import Session

from app.schema import upgrade_database
from bench import loads
from bench.flows import Plan
from bench.seed import CALLER_BLOCK, STAFF_EMAIL, grow_database, seed_bench
from bench.servers import Server, free_port, service_environment
from bench.standin import TwilioStandIn
from core.settings import DEFAULT_CONFIG, load_settings
from tickets.models import ContactPhone, Ticket
from tickets.staff import find_staff, issue_token, set_password

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/ivr_badday_bench"
PHASES = ("calm", "api", "dashboard", "sign-ins", "lock", "all")
ACCOUNT_SID = "AC" + "bad0" * 8
SMS_FROM = "+31612340000"
CALLERS = 200
# Log lines of the service that say it gave up on the database for a while, or cut a call to it.
MARKED_DOWN = ("database unavailable", "database unreachable")
CUT = "past its deadline"


@dataclass
class PhaseResult:
    """What one phase saw."""

    name: str
    calls: loads.Calls = field(default_factory=loads.Calls)
    tally: loads.Tally = field(default_factory=loads.Tally)
    probe: loads.Probe = field(default_factory=loads.Probe)
    marked_down: int = 0
    cut: int = 0


def percentile(values: list[float], pct: float) -> float:
    """Return the nearest-rank percentile of sorted values (0 when there are none)."""
    if not values:
        return 0.0
    return values[min(len(values) - 1, max(0, round(pct / 100 * len(values)) - 1))]


class BadDay:
    """One run: the database, the server, the phases and their report."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir = Path(tempfile.mkdtemp(prefix="ivr-badday-"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.auth_token = secrets.token_hex(16)
        self.standin = TwilioStandIn(ACCOUNT_SID, self.auth_token).start()
        self.config = self._config()
        self.env = self._server_env()
        self.settings = load_settings(environ=self.env)
        self.server: Server | None = None
        self.callers: list[str] = []
        self.password = secrets.token_urlsafe(16)
        self.token = ""
        self.results: list[PhaseResult] = []

    def say(self, line: str = "") -> None:
        print(line, flush=True)

    def _config(self) -> Path:
        """Write the shipped configuration, with 127.0.0.1 as a trusted proxy (many sources)."""
        text_ = DEFAULT_CONFIG.read_text().replace(
            "trusted_proxies = []", 'trusted_proxies = ["127.0.0.1"]'
        )
        path = self.workdir / "config.toml"
        path.write_text(text_)
        return path

    def _server_env(self) -> dict[str, str]:
        env = service_environment(
            database_url=self.args.database_url,
            public_url=self.base,
            auth_token=self.auth_token,
            workdir=self.workdir,
            account_sid=ACCOUNT_SID,
            api_url=self.standin.url,
            sms_from=SMS_FROM,
            pythonpath=os.pathsep.join(
                filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])
            ),
        )
        env["IVR_CONFIG"] = str(self.config)
        if self.args.workers:
            env["IVR_WORKERS"] = str(self.args.workers)
        return env

    @property
    def dsn(self) -> str:
        """Return the database's address as psycopg takes it."""
        url = make_url(self.args.database_url).set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    # -- the database ------------------------------------------------------------------------

    def prepare_database(self) -> None:
        """Create (or with --reuse keep) the database, grow it, seed callers and an account."""
        url = make_url(self.args.database_url)
        name = url.database or ""
        if url.get_backend_name() != "postgresql" or "bench" not in name:
            raise SystemExit(f"refusing database {name!r}: PostgreSQL, with 'bench' in its name")
        admin = create_engine(url.set(database="postgres"))
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            exists = connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            if exists and not self.args.reuse:
                connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            if not exists or not self.args.reuse:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        upgrade_database(self.args.database_url)
        engine = create_engine(self.args.database_url)
        try:
            self._seed(engine)
            self._grow(engine)
        finally:
            engine.dispose()

    def _seed(self, engine) -> None:
        with Session(engine) as session:
            self.callers = list(
                session.scalars(
                    select(ContactPhone.number)
                    .where(ContactPhone.number.startswith(CALLER_BLOCK))
                    .limit(CALLERS)
                )
            )
            staff = find_staff(session, STAFF_EMAIL)
            if staff is None or not self.callers:
                data = seed_bench(
                    session,
                    callers=CALLERS,
                    burst_organizations=1,
                    burst_per_org=1,
                    password=self.password,
                )
                self.callers, self.token = data.callers, data.api_token
                return
            set_password(session, staff=staff, password=self.password, actor="bench")
            self.token = issue_token(session, staff=staff, days=1)

    def _grow(self, engine) -> None:
        with Session(engine) as session:
            have = session.scalar(select(func.count()).select_from(Ticket))
        wanted = self.args.tickets - have
        if wanted <= 0:
            self.say(f"database: {have:,} tickets already")
            return
        self.say(f"growing the database by {wanted:,} tickets (1,000,000 take about 95 s)")
        grow_database(
            engine,
            tickets=wanted,
            contacts=max(1, wanted // 10),
            organizations=max(1, wanted // 100),
            call_logs=max(1, wanted // 5),
            report=self.say,
        )

    # -- the server --------------------------------------------------------------------------

    def start_server(self) -> None:
        """Start `ivr serve` and wait until its workers accept connections."""
        ivr = Path(sys.executable).with_name("ivr")
        argv = [str(ivr), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.server = Server(
            "ivr serve", argv, env=self.env, cwd=self.workdir, port=self.port,
            log=self.workdir / "service.log",
        )  # fmt: skip
        self.server.start(workers=self.args.workers or self.settings.server.workers)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.standin.stop()

    def log_text(self) -> str:
        return (self.workdir / "service.log").read_text(errors="replace")

    # -- phases ------------------------------------------------------------------------------

    def line(self) -> loads.Line:
        emergency = self.settings.emergency.numbers[0]
        alarms = tuple(
            table["technical_problem"]
            for table in self.settings.prompts.values()
            if "technical_problem" in table
        )
        plan = Plan("emergency-accept", emergency, ("1",), caller_kind="entitled")
        return loads.Line(self.port, self.base, self.auth_token, plan, self.callers, alarms)

    def loads_of(self, name: str, result: PhaseResult) -> list[Callable[[threading.Event], None]]:
        """Return the load loops of a phase, one per thread."""
        args, base, tally = self.args, self.base, result.tally
        work: list[Callable[[threading.Event], None]] = []
        if name in ("api", "all"):
            work += [lambda stop: loads.api_reads(base, self.token, tally, stop)] * args.api_loops
        if name in ("dashboard", "all"):
            for _ in range(args.dashboards):
                session = loads.signed_in(base, email=STAFF_EMAIL, password=self.password)
                work.append(lambda stop, s=session: loads.dashboard_pages(s, base, tally, stop))
        if name in ("sign-ins", "all"):
            for index in range(args.sign_in_threads):
                many = index % 2 == 0
                work.append(
                    lambda stop, many=many: loads.sign_in_flood(
                        base, tally, stop, many_sources=many
                    )
                )
        if name in ("lock", "all"):
            work.append(
                lambda stop: loads.sign_in_flood(base, tally, stop, many_sources=True, pause=0.2)
            )
        return work

    def run_phase(self, name: str) -> PhaseResult:
        """Run one phase for `--seconds`: its loads, the callers and the database probe."""
        result = PhaseResult(name)
        log_start = len(self.log_text())
        stop, held = threading.Event(), threading.Event()
        threads = [threading.Thread(target=loop, args=(stop,), daemon=True)
                   for loop in self.loads_of(name, result)]  # fmt: skip
        if name in ("lock", "all"):
            threads.append(threading.Thread(
                target=loads.hold_sign_in_lock, args=(self.dsn, held, stop), daemon=True
            ))  # fmt: skip
        threads.append(threading.Thread(
            target=loads.probe_database, args=(self.dsn, result.probe, stop), daemon=True
        ))  # fmt: skip
        line = self.line()
        threads += [
            threading.Thread(
                target=loads.call_back_to_back,
                args=(line, result.calls, stop, self.args.think),
                daemon=True,
            )
            for _ in range(self.args.callers)
        ]
        for thread in threads:
            thread.start()
        stop.wait(self.args.seconds)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        log = self.log_text()[log_start:]
        result.marked_down = sum(log.count(marker) for marker in MARKED_DOWN)
        result.cut = log.count(CUT)
        return result

    def warm_up(self) -> None:
        """Place a few calls before measuring: each worker's first requests set it up."""
        stop, calls = threading.Event(), loads.Calls()
        caller = threading.Thread(
            target=loads.call_back_to_back, args=(self.line(), calls, stop, 0.0), daemon=True
        )
        caller.start()
        stop.wait(3.0)
        stop.set()
        caller.join(timeout=60)

    # -- the report --------------------------------------------------------------------------

    def report_phase(self, result: PhaseResult) -> None:
        calls = result.calls
        seconds = calls.webhook_seconds()
        ms = [percentile(seconds, pct) * 1000 for pct in (50, 95, 100)]
        probe = result.probe
        self.say(
            f"{result.name:<10} calls {len(calls.results):>4}  recognised "
            f"{len(calls.recognised):>4}  outage path {len(calls.outage):>3}  failed "
            f"{len(calls.failed):>3}  webhooks p50/p95/max {ms[0]:.0f}/{ms[1]:.0f}/{ms[2]:.0f} ms"
        )
        self.say(
            f"{'':<10} database probe: {probe.answers} answers, {probe.failures} failures, "
            f"slowest {probe.slowest * 1000:.0f} ms; service log: {result.marked_down} "
            f"'database unavailable', {result.cut} cut off"
        )
        tally = result.tally
        for kind in sorted({kind for kind, _ in tally.statuses}):
            answers = ", ".join(
                f"{status}: {count}"
                for (k, status), count in sorted(tally.statuses.items())
                if k == kind
            )
            latencies = sorted(tally.latencies[kind])
            self.say(
                f"{'':<10} {kind}: {answers}; p50 {percentile(latencies, 50) * 1000:.0f} ms, "
                f"p95 {percentile(latencies, 95) * 1000:.0f} ms"
            )
        for (kind, error), count in sorted(tally.errors.items()):
            self.say(f"{'':<10} {kind}: {count} without an answer ({error})")
        for failed in (calls.outage + calls.failed)[:3]:
            self.say(f"{'':<10} e.g. {failed.sid}: {failed.error or 'served without database'}")

    def run(self) -> int:
        self.say(
            f"bad day: {self.args.database_url}, {self.args.seconds:.0f} s per phase, "
            f"{self.args.callers} callers"
        )
        self.prepare_database()
        self.start_server()
        self.say(f"ivr serve on {self.base}, logs in {self.workdir}")
        self.warm_up()
        for name in self.args.phases:
            result = self.run_phase(name)
            self.results.append(result)
            self.report_phase(result)
        outage = sum(len(result.calls.outage) for result in self.results)
        failed = sum(len(result.calls.failed) for result in self.results)
        total = sum(len(result.calls.results) for result in self.results)
        self.say(f"calls served through the outage path: {outage} of {total} (target 0)")
        return 1 if outage or failed else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.badday",
        description="Support traffic and a sign-in flood against `ivr serve` while super users "
        "call the emergency line; counts the calls served through the outage path.",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("IVR_BADDAY_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL database of the bench (its name must contain 'bench'); default "
        "IVR_BADDAY_DATABASE_URL or " + DEFAULT_DATABASE_URL,
    )
    parser.add_argument("--tickets", type=int, default=1_000_000, help="grow to this (1000000)")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the database of an earlier run (no regrowth)"
    )
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES))
    parser.add_argument("--seconds", type=float, default=20.0, help="per phase (20)")
    parser.add_argument("--callers", type=int, default=2, help="callers at once (2)")
    parser.add_argument("--think", type=float, default=0.2, help="a caller's pause (0.2 s)")
    parser.add_argument("--api-loops", type=int, default=3, help="API readers (3)")
    parser.add_argument("--dashboards", type=int, default=2, help="dashboard sessions (2)")
    parser.add_argument("--sign-in-threads", type=int, default=4, help="sign-in flooders (4)")
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (config)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the service's log")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the bad day; exit 0 when no call went through the outage path."""
    args = parse_args(argv)
    day = BadDay(args)

    def _terminate(_signum, _frame):
        raise SystemExit("stopped by signal")

    signal.signal(signal.SIGTERM, _terminate)
    status = 2
    try:
        status = day.run()
        return status
    finally:
        day.stop()
        if status == 0 and not args.keep_logs:
            shutil.rmtree(day.workdir, ignore_errors=True)
        else:
            day.say(f"service log kept in {day.workdir}")


if __name__ == "__main__":
    sys.exit(main())
