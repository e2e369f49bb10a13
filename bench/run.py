"""Benchmark whole calls against `ivr serve` on PostgreSQL, side by side with the floor.

    .venv/bin/python -m bench.run                    # floor, emergency and mixed flows
    .venv/bin/python -m bench.run --growth           # ... and again with 1,000,000 tickets
    .venv/bin/python -m bench.run --burst 500        # ... and 500 emergency calls in 60 s
    .venv/bin/python -m bench.run --all              # everything the targets speak of

Every run stops by itself (request counts and --time-limit), talks only to 127.0.0.1, and
stops the servers it started, also on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.orm import Session

from app.schema import upgrade_database
from bench.floor import FLOOR_PATH
from bench.flows import HttpTransport, Plan, Twilio, new_sid, place_call, standard_plans
from bench.reads import time_support_reads
from bench.seed import BenchData, count_ticket_calls, grow_database, seed_bench
from bench.servers import (
    Server,
    free_port,
    postgres_backends,
    process_cpu_seconds,
    service_environment,
)
from bench.standin import TwilioStandIn
from core.settings import Settings, load_settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/ivr_bench"
MIB = 1024

# The targets of the performance issue ("an emergency webhook at a third of today's CPU").
TARGET_CPU_RATIO = 3.0  # server CPU per emergency webhook / the floor's, at most
TARGET_THROUGHPUT_RATIO = 0.4  # emergency webhooks/s back to back / the floor's, at least
TARGET_SATURATED_P99_MS = 100.0  # emergency p99, 16 calls back to back, at most
TARGET_PACED_P99_MS = 25.0  # emergency p99, 16 callers pausing like people, at most
TARGET_GROWTH_RATIO = 1.1  # at 1M tickets / 100k contacts: CPU and saturated p99, at most
TARGET_READ_P95_MS = 100.0
TARGET_WORKER_RSS_MIB = 100.0
# How long the bench waits after a phase for the sender loops to send what it queued.
OUTBOX_DRAIN_SECONDS = 120.0
# Paging on: the sender loops text through this account, at the bench's own stand-in.
BENCH_ACCOUNT_SID = "AC" + "be4c" * 8
BENCH_SMS_FROM = "+31612340000"


def percentile(values: list[float], pct: float) -> float:
    """Return the nearest-rank percentile of already sorted values (0 when empty)."""
    if not values:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(values)))
    return values[min(rank, len(values)) - 1]


@dataclass
class Phase:
    """The measurements of one phase: a number of calls or requests at one concurrency."""

    name: str
    concurrency: int
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    by_endpoint: dict[str, list[float]] = field(default_factory=dict)
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    db_cpu: float = 0.0
    calls: int = 0
    bridged: int = 0
    called_back: int = 0  # every engineer on a call: the caller asked to be called back
    # Every engineer rung took another call while this one rang: the caller left a message.
    message_while_busy: int = 0
    recorded: int = 0
    errors: list[str] = field(default_factory=list)
    error_trails: dict[str, list[str]] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    outbox_waiting: int = 0  # messages still unsent when the bench stopped waiting
    outbox_seconds: float = 0.0  # how long the sender loops took to send the phase's messages

    @property
    def webhooks(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.webhooks / self.elapsed if self.elapsed else 0.0

    def p(self, pct: float) -> float:
        """Return a latency percentile in milliseconds."""
        return percentile(self.latencies, pct) * 1000

    def per_webhook_ms(self, seconds: float) -> float:
        return seconds * 1000 / self.webhooks if self.webhooks else 0.0

    @property
    def cpu_ms(self) -> float:
        return self.per_webhook_ms(self.server_cpu)

    def summary(self) -> dict:
        """Return the phase's figures as plain values (for --json)."""
        return {
            "name": self.name,
            "concurrency": self.concurrency,
            "calls": self.calls,
            "webhooks": self.webhooks,
            "seconds": round(self.elapsed, 3),
            "webhooks_per_second": round(self.rate, 1),
            "p50_ms": round(self.p(50), 2),
            "p95_ms": round(self.p(95), 2),
            "p99_ms": round(self.p(99), 2),
            "max_ms": round(self.p(100), 2),
            "server_cpu_ms_per_webhook": round(self.cpu_ms, 3),
            "client_cpu_ms_per_webhook": round(self.per_webhook_ms(self.client_cpu), 3),
            "db_cpu_ms_per_webhook": round(self.per_webhook_ms(self.db_cpu), 3),
            "bridged": self.bridged,
            "called_back": self.called_back,
            "message_while_busy": self.message_while_busy,
            "voicemails": self.recorded,
            "errors": len(self.errors),
            "first_errors": self.errors[:5],
            "outbox_drain_seconds": round(self.outbox_seconds, 1),
            "outbox_waiting_after": self.outbox_waiting,
            **self.extra,
        }


class Bench:
    """One invocation: the database, the two servers, the phases and the report."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir = Path(tempfile.mkdtemp(prefix="ivr-bench-"))
        self.deadline = time.monotonic() + args.time_limit
        self.service_port = free_port()
        self.floor_port = free_port()
        self.public_url = f"http://127.0.0.1:{self.service_port}"
        self.auth_token = secrets.token_hex(16)
        self.messages = TwilioStandIn(BENCH_ACCOUNT_SID, self.auth_token).start()
        self.env = self._server_env()
        self.settings: Settings = load_settings(environ=self.env)
        self.workers = args.workers or self.settings.server.workers
        self.plans = standard_plans(self.settings, triage_key=args.triage_key)
        self.alarms = tuple(
            table["technical_problem"]
            for table in self.settings.prompts.values()
            if "technical_problem" in table
        )
        self.engine = None
        self.data: BenchData | None = None
        self.service: Server | None = None
        self.floor: Server | None = None
        self.phases: dict[str, Phase] = {}
        self.reads: dict[str, dict] = {}
        # The largest worker before the first sign-in to the dashboard (None: no reads timed).
        self.calls_only_rss_kib: int | None = None
        self.notes: dict = {}
        self._entitled = itertools.count()
        self._anyone = itertools.count()
        self._burst = itertools.count()

    # -- set-up ------------------------------------------------------------------------------

    def _server_env(self) -> dict[str, str]:
        # Paging on, as in production: pages and callers' SMS go to the stand-in.
        env = service_environment(
            database_url=self.args.database_url,
            public_url=self.public_url,
            auth_token=self.auth_token,
            workdir=self.workdir,
            account_sid=BENCH_ACCOUNT_SID,
            api_url=self.messages.url,
            sms_from=BENCH_SMS_FROM,
            pythonpath=os.pathsep.join(
                filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])
            ),
        )
        if self.args.config:
            env["IVR_CONFIG"] = str(Path(self.args.config).resolve())
        if self.args.workers:
            env["IVR_WORKERS"] = str(self.args.workers)
        return env

    def say(self, line: str = "") -> None:
        print(line, flush=True)

    def prepare_database(self) -> None:
        """Create a fresh database, migrate it and add the bench's callers and staff."""
        url = make_url(self.args.database_url)
        if url.get_backend_name() == "postgresql":
            name = url.database or ""
            if "bench" not in name:
                raise SystemExit(f"refusing to recreate database {name!r}: its name lacks 'bench'")
            admin = create_engine(url.set(database="postgres").render_as_string(False))
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
        elif url.get_backend_name() == "sqlite" and url.database:
            Path(url.database).unlink(missing_ok=True)
        upgrade_database(self.args.database_url)
        # No statement timeout here: growing the database takes minutes, not seconds.
        self.engine = create_engine(self.args.database_url)
        with Session(self.engine) as session:
            self.data = seed_bench(
                session,
                callers=self.args.callers,
                burst_organizations=max(1, self.args.burst // 5),
                burst_per_org=5,
                password=secrets.token_urlsafe(16),
            )

    def start_servers(self) -> None:
        """Start `ivr serve` and the floor, with the same gunicorn settings."""
        python = sys.executable
        ivr_script = Path(python).with_name("ivr")
        serve = (
            [str(ivr_script)]
            if ivr_script.exists()
            else [python, "-c", "from app.cli import main; main()"]
        )
        serve += ["serve", "--host", "127.0.0.1", "--port", str(self.service_port)]
        floor = [python, "-m", "bench.floor", "--port", str(self.floor_port)]
        if self.args.workers:
            serve += ["--workers", str(self.args.workers)]
            floor += ["--workers", str(self.args.workers)]
        self.service = Server(
            "ivr serve",
            serve,
            env=self.env,
            cwd=self.workdir,
            port=self.service_port,
            log=self.workdir / "service.log",
        )
        self.floor = Server(
            "floor",
            floor,
            env=self.env,
            cwd=self.workdir,
            port=self.floor_port,
            log=self.workdir / "floor.log",
        )
        self.service.start(workers=self.workers)
        self.floor.start(workers=self.workers)

    def stop_servers(self) -> None:
        for server in (self.service, self.floor):
            if server is not None:
                server.stop()
        if self.engine is not None:
            self.engine.dispose()
        self.messages.stop()

    # -- callers -----------------------------------------------------------------------------

    def caller_for(self, plan: Plan) -> str:
        """Return a caller number: a fresh entitled contact, or any Dutch number."""
        if plan.caller_kind == "entitled":
            callers = self.data.callers
            return callers[next(self._entitled) % len(callers)]
        return f"+3120{5000000 + next(self._anyone) % 4000000:07d}"

    # -- phases ------------------------------------------------------------------------------

    def measure(self, phase: Phase, server: Server, work) -> Phase:
        """Run `work` and note elapsed time and CPU of the server, the client and the database.

        The service's CPU is read once the sender loops have sent what the phase queued (its
        callers' texts, its pages): their cost belongs to this phase, and the next one starts
        without a backlog of this one's messages. The elapsed time (webhooks per second) ends
        with the last webhook.
        """
        database = make_url(self.args.database_url).database or ""
        backends = postgres_backends(database) if server is self.service else []
        db_before = {pid: process_cpu_seconds(pid) for pid in backends}
        cpu_before = server.cpu_seconds()
        client_before = _own_cpu()
        started = time.perf_counter()
        work()
        phase.elapsed = time.perf_counter() - started
        if server is self.service:
            phase.outbox_waiting = self.wait_for_outbox(timeout=OUTBOX_DRAIN_SECONDS)
            phase.outbox_seconds = time.perf_counter() - started - phase.elapsed
        phase.client_cpu = _own_cpu() - client_before
        phase.server_cpu = server.cpu_seconds() - cpu_before
        if server is self.service:
            after = postgres_backends(database)
            phase.db_cpu = sum(process_cpu_seconds(pid) - db_before.get(pid, 0.0) for pid in after)
        server.sample_memory()
        return phase

    def run_calls(
        self,
        name: str,
        plans: list[Plan],
        *,
        calls: int,
        concurrency: int,
        think: float = 0.0,
        record: bool = True,
    ) -> Phase:
        """Place `calls` whole calls from `concurrency` callers back to back.

        With `think` 0 every caller answers at once, so the server is never idle: that is
        the throughput the service can give. With a pause, callers listen like people do.
        """
        phase = Phase(name, concurrency)
        counter = itertools.count()
        results = []

        def caller_thread() -> None:
            transport = HttpTransport("127.0.0.1", self.service_port)
            twilio = Twilio(transport, public_url=self.public_url, auth_token=self.auth_token)
            if think:
                time.sleep(random.uniform(0, think))  # callers do not all ring at once
            try:
                while time.monotonic() < self.deadline:
                    number = next(counter)
                    if number >= calls:
                        break
                    plan = plans[number % len(plans)]
                    caller = self.caller_for(plan)
                    results.append(
                        place_call(twilio, plan, caller=caller, think=think, alarms=self.alarms)
                    )
            finally:
                transport.close()

        self.measure(phase, self.service, lambda: _run_threads(caller_thread, concurrency))
        _collect(phase, results)
        if record:
            self.phases[name] = phase
        return phase

    def run_paced(self, name: str) -> None:
        """Place the emergency calls of callers who listen before each answer, if asked."""
        args = self.args
        if not args.paced_calls:
            return
        self.say(
            f"{name}: {args.paced_calls} calls, {args.concurrency} at a time, "
            f"{args.pace:g} s of listening before each answer ..."
        )
        self.run_calls(
            name,
            [self.plans["emergency-accept"]],
            calls=args.paced_calls,
            concurrency=args.concurrency,
            think=args.pace,
        )

    def run_floor(self, name: str, *, requests: int, concurrency: int) -> Phase:
        """Send `requests` signed webhooks to the floor from `concurrency` threads."""
        phase = Phase(name, concurrency)
        counter = itertools.count()
        samples_per_thread: list[list] = []
        errors: list[str] = []
        # The floor checks signatures against the configured public URL, as the service does.
        floor_twilio_url = self.public_url

        def floor_thread() -> None:
            transport = HttpTransport("127.0.0.1", self.floor_port)
            twilio = Twilio(transport, public_url=floor_twilio_url, auth_token=self.auth_token)
            samples: list = []
            samples_per_thread.append(samples)
            form = {
                "AccountSid": "AC" + "0" * 32,
                "ApiVersion": "2010-04-01",
                "CallSid": new_sid(),
                "CallStatus": "in-progress",
                "Called": self.settings.emergency.numbers[0],
                "Caller": self.data.callers[0],
                "Direction": "inbound",
                "From": self.data.callers[0],
                "To": self.settings.emergency.numbers[0],
                "ToCountry": "NL",
                "Digits": "1",
            }
            try:
                while time.monotonic() < self.deadline and next(counter) < requests:
                    try:
                        status, body = twilio.send(FLOOR_PATH, form, samples)
                    except OSError as exc:
                        errors.append(f"{type(exc).__name__}: {exc}")
                        continue
                    if status != 200 or not body.startswith(b"<?xml"):
                        errors.append(f"floor answered HTTP {status}")
            finally:
                transport.close()

        self.measure(phase, self.floor, lambda: _run_threads(floor_thread, concurrency))
        for samples in samples_per_thread:
            for endpoint, seconds in samples:
                phase.latencies.append(seconds)
                phase.by_endpoint.setdefault(endpoint, []).append(seconds)
        phase.latencies.sort()
        phase.errors = errors
        self.phases[name] = phase
        return phase

    def run_burst(self, count: int, *, window: float, think: float) -> Phase:
        """Start `count` emergency calls spread evenly over `window` seconds; all must connect."""
        plan = self.plans["emergency-accept"]
        phase = Phase(f"burst of {count}", concurrency=0)
        results: list = []
        sids = [new_sid() for _ in range(count)]
        starts: list[float] = []
        sent_before = self.messages.accepted

        def one_call(index: int) -> None:
            transport = HttpTransport("127.0.0.1", self.service_port)
            twilio = Twilio(transport, public_url=self.public_url, auth_token=self.auth_token)
            burst = self.data.burst_callers
            caller = burst[next(self._burst) % len(burst)]
            try:
                results.append(
                    place_call(
                        twilio,
                        plan,
                        caller=caller,
                        sid=sids[index],
                        think=think,
                        alarms=self.alarms,
                    )  # fmt: skip
                )
            finally:
                transport.close()

        def work() -> None:
            threads = []
            began = time.monotonic()
            for index in range(count):
                delay = began + window * index / count - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if time.monotonic() > self.deadline:
                    break
                thread = threading.Thread(target=one_call, args=(index,), daemon=True)
                starts.append(time.monotonic() - began)
                thread.start()
                threads.append(thread)
            for thread in threads:
                thread.join(timeout=max(0.0, self.deadline - time.monotonic()))

        self.measure(phase, self.service, work)
        _collect(phase, results)
        with Session(self.engine) as session:
            on_tickets = count_ticket_calls(session, sids)
        waiting = phase.outbox_waiting
        intervals = sorted((r.started, r.ended) for r in results)
        phase.concurrency = _max_overlap(intervals)
        phase.extra = {
            "calls_started": len(starts),
            "start_span_seconds": round(starts[-1] - starts[0], 1) if starts else 0.0,
            "think_seconds": think,
            "calls_on_tickets": on_tickets,
            "max_calls_at_once": phase.concurrency,
            "messages_sent": self.messages.accepted - sent_before,
            "outbox_waiting": waiting,
        }
        self.phases[phase.name] = phase
        return phase

    def wait_for_outbox(self, *, timeout: float) -> int:
        """Wait until the sender loops have sent every message due; return how many still wait."""
        query = text(
            "SELECT count(*) FROM outbox_messages"
            " WHERE status IN ('pending', 'sending') AND next_attempt_at <= :now"
        )
        until = time.monotonic() + timeout
        while True:
            with self.engine.connect() as connection:
                waiting = connection.scalar(query, {"now": datetime.now(UTC)})
            if not waiting or time.monotonic() > until:
                return waiting
            time.sleep(1.0)

    def time_reads(self, label: str) -> None:
        """Time the dashboard and API lists at the database's current size."""
        if self.calls_only_rss_kib is None:  # before the first sign-in (its password hash)
            self.service.sample_memory()
            self.calls_only_rss_kib = max(self.service.peak_rss_kib.values(), default=0)
        self.reads[label] = time_support_reads(
            self.public_url,
            email=self.data.staff_email,
            password=self.data.staff_password,
            token=self.data.api_token,
            count=self.args.reads,
            deadline=self.deadline,
        )

    def grow(self) -> None:
        """Grow the database to the size of years of use, then let PostgreSQL analyze it."""
        self.say(
            f"growing the database: {self.args.tickets:,} tickets, {self.args.contacts:,} contacts"
        )
        started = time.perf_counter()
        timings = grow_database(
            self.engine,
            tickets=self.args.tickets,
            contacts=self.args.contacts,
            organizations=max(1, self.args.contacts // 10),
            call_logs=max(1, self.args.tickets // 5),
            report=self.say,
        )
        self.notes["growth_seconds"] = round(time.perf_counter() - started, 1)
        self.notes["growth_timings"] = {k: round(v, 1) for k, v in timings.items()}
        with self.engine.connect() as connection:
            self.notes["growth_database_size"] = connection.scalar(
                text("SELECT pg_size_pretty(pg_database_size(current_database()))")
            )
        self.say(
            f"  grown in {self.notes['growth_seconds']} s; "
            f"database size {self.notes['growth_database_size']}"
        )

    # -- the whole run -----------------------------------------------------------------------

    def run(self) -> int:
        args = self.args
        self.say(self.header())
        self.prepare_database()
        self.start_servers()
        self.say(
            f"servers: ivr serve pid {self.service.pid}, floor pid {self.floor.pid}; "
            f"gunicorn gevent, {self.workers} workers x {self.settings.server.threads} requests "
            "at once"
        )
        emergency = [self.plans["emergency-accept"]]
        mixed = list(self.plans.values())
        concurrency = args.concurrency
        self.say("warming up ...")
        self.run_calls(
            "warm-up", mixed, calls=2 * concurrency, concurrency=concurrency, record=False
        )
        self.run_floor("floor warm-up", requests=20 * concurrency, concurrency=concurrency)
        del self.phases["floor warm-up"]

        self.say(f"emergency flow: {args.calls} calls, {concurrency} at a time ...")
        app = self.run_calls("emergency", emergency, calls=args.calls, concurrency=concurrency)
        self.say(f"floor: {app.webhooks} signed webhooks, {concurrency} at a time ...")
        self.run_floor("floor", requests=app.webhooks, concurrency=concurrency)
        self.say(f"all flows mixed: {args.calls} calls ...")
        self.run_calls("mixed", mixed, calls=args.calls, concurrency=concurrency)
        self.run_paced("emergency, paced")
        if args.growth:
            self.time_reads("empty")
            self.grow()
            self.run_calls("warm-up", mixed, calls=2 * concurrency, concurrency=concurrency,
                           record=False)  # fmt: skip
            self.say(f"emergency flow at size: {args.calls} calls ...")
            self.run_calls("emergency, grown", emergency, calls=args.calls, concurrency=concurrency)
            self.say(f"all flows mixed at size: {args.calls} calls ...")
            self.run_calls("mixed, grown", mixed, calls=args.calls, concurrency=concurrency)
            self.run_paced("emergency, paced, grown")
            self.say(f"support reads at size: {args.reads} of each ...")
            self.time_reads("grown")
        if args.burst:
            self.say(f"burst: {args.burst} emergency calls within {args.burst_window:.0f} s ...")
            self.run_burst(args.burst, window=args.burst_window, think=args.burst_think)
        for server in (self.service, self.floor):
            server.sample_memory()
        report = self.report()
        if args.json:
            Path(args.json).write_text(json.dumps(self.as_json(), indent=2) + "\n")
            self.say(f"figures written to {args.json}")
        return report

    # -- the report --------------------------------------------------------------------------

    def header(self) -> str:
        cpu_model = ""
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        self.notes.update(
            {
                "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "cpus": len(os.sched_getaffinity(0)),
                "cpu_model": cpu_model or platform.processor(),
                "python": platform.python_version(),
                "kernel": platform.release(),
                "commit": _git_commit(),
                "load_before": [round(x, 2) for x in os.getloadavg()],
                "triage_key": self.args.triage_key,
            }
        )
        n = self.notes
        reported = "a major outage" if n["triage_key"] == "1" else "an urgent bug"
        return (
            f"OTYS IVR benchmark, {n['date']}\n"
            f"machine: {n['cpus']} CPUs ({n['cpu_model']}), Linux {n['kernel']}, "
            f"Python {n['python']}, commit {n['commit']}\n"
            f"load average before: {n['load_before']}\n"
            f"emergency callers report {reported} (triage key {n['triage_key']})"
        )

    def report(self) -> int:
        """Print every figure, the ratios and the targets; return the exit status."""
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect() as connection:
                version = connection.scalar(text("SELECT version()")) or ""
            self.notes["database"] = " ".join(version.split()[:2])
        else:
            self.notes["database"] = self.engine.dialect.name
        self.notes["load_after"] = [round(x, 2) for x in os.getloadavg()]
        self.say()
        self.say(
            f"database: {self.notes['database']}; load average after: {self.notes['load_after']}"
        )
        self.say(
            f"{'phase':<18}{'calls':>6}{'webhooks':>9}{'err':>5}{'wh/s':>8}{'p50 ms':>8}"
            f"{'p95 ms':>8}{'p99 ms':>8}{'max ms':>8}{'CPU ms/wh':>10}{'db ms/wh':>9}"
            f"{'bench ms/wh':>12}"
        )
        for phase in self.phases.values():
            self.say(
                f"{phase.name:<18}{phase.calls:>6}{phase.webhooks:>9}{len(phase.errors):>5}"
                f"{phase.rate:>8.0f}{phase.p(50):>8.1f}{phase.p(95):>8.1f}{phase.p(99):>8.1f}"
                f"{phase.p(100):>8.1f}{phase.cpu_ms:>10.2f}"
                f"{phase.per_webhook_ms(phase.db_cpu):>9.2f}"
                f"{phase.per_webhook_ms(phase.client_cpu):>12.2f}"
            )
        self.say("(CPU ms/wh: all gunicorn processes of that server, until the sender loops have")
        self.say(" sent the phase's messages; db: its PostgreSQL backends; bench: this load")
        self.say(" generator, which shares the machine)")
        drains = [
            f"{phase.name} {phase.outbox_seconds:.1f} s"
            + (f" ({phase.outbox_waiting} still waiting)" if phase.outbox_waiting else "")
            for phase in self.phases.values()
            if phase.name != "floor"
        ]
        self.say("messages sent after the last webhook within: " + ", ".join(drains))
        for phase in self.phases.values():
            for error in sorted(set(phase.errors))[:5]:
                self.say(f"  error in {phase.name}: {error}")
                if phase.error_trails.get(error):
                    self.say("    its webhooks: " + " > ".join(phase.error_trails[error]))
        self.say(
            f"paging on: {self.messages.accepted} messages sent to the Twilio stand-in "
            f"({self.messages.refused} refused)"
        )
        self.print_endpoints()
        self.print_memory()
        self.print_reads()
        targets = self.targets()
        self.say()
        self.say("targets:")
        for name, value, target, passed in targets:
            verdict = "PASS" if passed else "FAIL"
            self.say(f"  {verdict}  {name:<52} {value:>24}   target {target}")
        self.notes["targets"] = [
            {"name": n, "value": v, "target": t, "pass": p} for n, v, t, p in targets
        ]
        return 0 if all(p for *_, p in targets) else 1

    def print_endpoints(self) -> None:
        for name in ("mixed", "emergency, paced"):
            phase = self.phases.get(name)
            if phase is not None and phase.by_endpoint:
                self.print_phase_endpoints(phase)

    def print_phase_endpoints(self, phase: Phase) -> None:
        self.say()
        self.say(f"webhooks of '{phase.name}' by endpoint (slowest total first):")
        rows = sorted(phase.by_endpoint.items(), key=lambda item: -sum(item[1]))
        for endpoint, values in rows[:14]:
            values.sort()
            self.say(
                f"  {endpoint:<40}{len(values):>6}  p50 {percentile(values, 50) * 1000:6.1f} ms"
                f"  p99 {percentile(values, 99) * 1000:6.1f} ms"
            )

    def print_memory(self) -> None:
        self.say()
        for server in (self.service, self.floor):
            peaks = sorted(server.peak_rss_kib.values())
            text_peaks = ", ".join(f"{kib / MIB:.0f}" for kib in peaks)
            threads = sorted(set(server.threads.values()))
            self.say(
                f"peak RSS per worker, {server.name}: {text_peaks} MiB "
                f"(threads per worker seen: {threads})"
            )
        if self.calls_only_rss_kib is not None:
            self.say(
                f"  of which calls alone, before the first dashboard sign-in: "
                f"{self.calls_only_rss_kib / MIB:.0f} MiB at most"
            )

    def print_reads(self) -> None:
        for label, reads in self.reads.items():
            self.say()
            self.say(f"support reads, {label} database (n requests each, in turn):")
            for name, result in reads.items():
                if "unavailable" in result:
                    self.say(
                        f"  {name:<20} {result['path']:<48} unavailable: {result['unavailable']}"
                    )
                    continue
                values = sorted(result["latencies"])
                self.say(
                    f"  {name:<20} {result['path']:<48} p50 {percentile(values, 50) * 1000:6.1f}"
                    f"  p95 {percentile(values, 95) * 1000:6.1f}"
                    f"  p99 {percentile(values, 99) * 1000:6.1f} ms"
                    f"  n {len(values)}  errors {len(result['errors'])}"
                )

    def targets(self) -> list[tuple[str, str, str, bool]]:
        """Return (target, measured, wanted, met) for every target this run measured."""
        rows: list[tuple[str, str, str, bool]] = []

        def add(name: str, value: str, wanted: str, met: bool) -> None:
            rows.append((name, value, wanted, met))

        app, floor = self.phases.get("emergency"), self.phases.get("floor")
        if app and floor:
            ratio = app.cpu_ms / floor.cpu_ms if floor.cpu_ms else math.inf
            add(
                "emergency CPU per webhook / floor",
                f"{ratio:.2f} ({app.cpu_ms:.1f}/{floor.cpu_ms:.1f} ms)",
                f"<= {TARGET_CPU_RATIO:g}",
                ratio <= TARGET_CPU_RATIO,
            )
            ratio = app.rate / floor.rate if floor.rate else 0.0
            add(
                f"emergency webhooks/s / floor, {app.concurrency} back to back",
                f"{ratio:.2f} ({app.rate:.0f}/{floor.rate:.0f})",
                f">= {TARGET_THROUGHPUT_RATIO:g}",
                ratio >= TARGET_THROUGHPUT_RATIO,
            )
        for name in ("emergency", "emergency, grown"):
            phase = self.phases.get(name)
            if phase:
                add(
                    f"{name} p99, {phase.concurrency} calls back to back",
                    f"{phase.p(99):.1f} ms",
                    f"<= {TARGET_SATURATED_P99_MS:.0f} ms",
                    phase.p(99) <= TARGET_SATURATED_P99_MS,
                )
        for name in ("emergency, paced", "emergency, paced, grown"):
            phase = self.phases.get(name)
            if phase:
                add(
                    f"{name} p99, {phase.concurrency} callers ~{self.args.pace:g} s pauses",
                    f"{phase.p(99):.1f} ms",
                    f"<= {TARGET_PACED_P99_MS:.0f} ms",
                    phase.p(99) <= TARGET_PACED_P99_MS,
                )
        empty, grown = self.phases.get("emergency"), self.phases.get("emergency, grown")
        if empty and grown:
            ratio = grown.cpu_ms / empty.cpu_ms if empty.cpu_ms else math.inf
            add(
                "at size: emergency CPU/webhook grown / empty",
                f"{ratio:.2f}",
                f"<= {TARGET_GROWTH_RATIO:g}",
                ratio <= TARGET_GROWTH_RATIO,
            )
            ratio = grown.p(99) / empty.p(99) if empty.p(99) else math.inf
            add(
                "at size: emergency saturated p99 grown / empty",
                f"{ratio:.2f}",
                f"<= {TARGET_GROWTH_RATIO:g}",
                ratio <= TARGET_GROWTH_RATIO,
            )
        for name, result in self.reads.get("grown", {}).items():
            target = result.get("target_ms", TARGET_READ_P95_MS)
            if "unavailable" in result:
                add(f"at size: {name} p95", "unavailable", f"< {target:.0f} ms", False)
                continue
            p95 = percentile(sorted(result["latencies"]), 95) * 1000
            ok = p95 < target and not result["errors"]
            add(f"at size: {name} p95", f"{p95:.1f} ms", f"< {target:.0f} ms", ok)
        errors = sum(len(p.errors) for p in self.phases.values())
        add("errors in every phase", str(errors), "0", errors == 0)
        burst = next((p for p in self.phases.values() if p.name.startswith("burst")), None)
        if burst:
            wanted = self.args.burst
            # An engineer on a call is rung for no other: when all are, callers ask to be called
            # back, or leave a message when the engineers took other calls while theirs rang
            # (the bench's engineers end their calls at once, so one is free again by then).
            served = burst.bridged + burst.called_back + burst.message_while_busy
            add("burst: callers bridged (+ called back, + message)",
                f"{burst.bridged} (+{burst.called_back}, +{burst.message_while_busy})/{wanted}",
                f"{wanted}", served == wanted)  # fmt: skip
            on_tickets = burst.extra["calls_on_tickets"]
            add("burst: calls on tickets", str(on_tickets), str(wanted), on_tickets == wanted)
            span = burst.extra["start_span_seconds"]
            add("burst: calls started within", f"{span:.1f} s",
                f"<= {self.args.burst_window:.0f} s", span <= self.args.burst_window)  # fmt: skip
            add("burst: errors", str(len(burst.errors)), "0", not burst.errors)
            sent, waiting = burst.extra["messages_sent"], burst.extra["outbox_waiting"]
            # Reporting an outage (triage key 1), the burst's tickets join the incident paged
            # earlier in the run, and the callers' texts are capped an hour: none may be due.
            needed = "> 0 sent, 0 waiting" if self.args.triage_key != "1" else "0 waiting"
            add("burst: paging on, its messages sent", f"{sent} sent, {waiting} waiting", needed,
                waiting == 0 and (sent > 0 or self.args.triage_key == "1"))  # fmt: skip
        peak = max(self.service.peak_rss_kib.values(), default=0) / MIB
        add("memory: largest service worker RSS", f"{peak:.0f} MiB",
            f"<= {TARGET_WORKER_RSS_MIB:.0f} MiB", 0 < peak <= TARGET_WORKER_RSS_MIB)  # fmt: skip
        return rows

    def as_json(self) -> dict:
        memory = {
            server.name: sorted(round(k / MIB, 1) for k in server.peak_rss_kib.values())
            for server in (self.service, self.floor)
        }
        reads = {
            label: {
                name: (
                    {"path": r["path"], "unavailable": r["unavailable"]}
                    if "unavailable" in r
                    else {
                        "path": r["path"],
                        "count": len(r["latencies"]),
                        "p50_ms": round(percentile(sorted(r["latencies"]), 50) * 1000, 2),
                        "p95_ms": round(percentile(sorted(r["latencies"]), 95) * 1000, 2),
                        "p99_ms": round(percentile(sorted(r["latencies"]), 99) * 1000, 2),
                        "errors": len(r["errors"]),
                    }
                )
                for name, r in reads.items()
            }
            for label, reads in self.reads.items()
        }
        return {
            "machine": self.notes,
            "workers": self.workers,
            "threads": self.settings.server.threads,
            "phases": [phase.summary() for phase in self.phases.values()],
            "worker_peak_rss_mib": memory,
            "worker_peak_rss_mib_before_sign_in": (
                round(self.calls_only_rss_kib / MIB, 1) if self.calls_only_rss_kib else None
            ),
            "reads": reads,
        }


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _run_threads(target, count: int) -> None:
    threads = [threading.Thread(target=target, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _collect(phase: Phase, results: list) -> None:
    """Fold call results into a phase."""
    by_endpoint: dict[str, list[float]] = defaultdict(list)
    for result in results:
        for endpoint, seconds in result.samples:
            phase.latencies.append(seconds)
            by_endpoint[endpoint].append(seconds)
        phase.calls += 1
        phase.bridged += result.bridged
        phase.called_back += result.called_back
        phase.message_while_busy += result.refused_busy and result.recorded and not result.bridged
        phase.recorded += result.recorded
        if result.error:
            error = f"{result.plan}: {result.error}"
            phase.errors.append(error)
            # The webhooks of the first call that failed so: where its flow went astray.
            phase.error_trails.setdefault(error, [endpoint for endpoint, _ in result.samples])
    phase.latencies.sort()
    phase.by_endpoint = dict(by_endpoint)


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = peak = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def _git_commit() -> str:
    try:
        commit = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark whole calls against `ivr serve`, side by side with the floor.",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="simultaneous calls (16)")
    parser.add_argument("--calls", type=int, default=480, help="calls per phase (480)")
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (config)")
    parser.add_argument(
        "--paced-calls", type=int, default=128,
        help="emergency calls placed with pauses, like people listening (128; 0 skips)",
    )  # fmt: skip
    parser.add_argument(
        "--pace",
        type=float,
        default=1.0,
        help="seconds a paced caller listens before each answer (1.0; prompts take longer)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("IVR_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="database the bench recreates (its name must contain 'bench'); "
        "default IVR_BENCH_DATABASE_URL or " + DEFAULT_DATABASE_URL,
    )
    parser.add_argument("--config", default=None, help="service configuration (IVR_CONFIG)")
    parser.add_argument("--callers", type=int, default=4000, help="entitled callers to seed")
    parser.add_argument("--growth", action="store_true", help="measure again at size")
    parser.add_argument("--tickets", type=int, default=1_000_000, help="tickets for --growth")
    parser.add_argument("--contacts", type=int, default=100_000, help="contacts for --growth")
    parser.add_argument("--reads", type=int, default=200, help="requests per support read")
    parser.add_argument("--burst", type=int, default=0, help="emergency calls in the burst")
    parser.add_argument("--burst-window", type=float, default=60.0, help="seconds (60)")
    parser.add_argument(
        "--burst-think", type=float, default=1.0,
        help="seconds a burst caller listens before each answer (1.0)",
    )  # fmt: skip
    parser.add_argument(
        "--triage-key", default="1", choices=("1", "2"),
        help="what emergency callers report: 1 a major outage (they join one incident), "
        "2 an urgent bug (1)",
    )  # fmt: skip
    parser.add_argument("--all", action="store_true", help="--growth and --burst 500")
    parser.add_argument("--time-limit", type=float, default=1200.0, help="seconds (1200)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument(
        "--keep-logs", action="store_true",
        help="keep the servers' logs also after a run without errors",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.all:
        args.growth = True
        args.burst = args.burst or 500
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 when every measured target is met."""
    args = parse_args(argv)
    bench = Bench(args)

    def _terminate(_signum, _frame):
        raise SystemExit("stopped by signal")

    previous = signal.signal(signal.SIGTERM, _terminate)
    clean = False
    try:
        status = bench.run()
        clean = not any(phase.errors for phase in bench.phases.values())
        return status
    finally:
        bench.stop_servers()
        signal.signal(signal.SIGTERM, previous)
        if clean and not args.keep_logs:
            shutil.rmtree(bench.workdir, ignore_errors=True)
        else:
            bench.say(f"server logs kept in {bench.workdir}")


if __name__ == "__main__":
    sys.exit(main())
