"""Real parts for the failure tests: a PostgreSQL server we can stop, and `ivr serve` processes."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
from helpers import AUTH_TOKEN, PUBLIC_URL, SECRET_KEY, sign
from sqlalchemy import create_engine, delete

from core.db import Base
from core.settings import DEFAULT_CONFIG

IVR = str(Path(sys.executable).parent / "ivr")
STARTUP_SECONDS = 40


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def children_of(pid: int) -> list[int]:
    """Return the pids of the processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: the parent pid follows it.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def postgres_binaries() -> Path | None:
    """Return the newest Debian PostgreSQL bin directory that has initdb and pg_ctl."""
    for directory in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        path = Path(directory)
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


def empty_tables(database_url: str) -> None:
    """Leave a shared test database (PostgreSQL runs) as empty as the other tests expect."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(delete(table))
    finally:
        engine.dispose()


def wait_until(predicate, *, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class PostgresServer:
    """A throw-away PostgreSQL cluster on its own port, run as the postgres user if we are root."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.base = Path(tempfile.mkdtemp(prefix="ivr-pg-"))
        self.data = self.base / "data"
        self.logfile = self.base / "postgres.log"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            # initdb refuses to run as root: the cluster belongs to the postgres user.
            account = pwd.getpwnam("postgres")
            os.chown(self.base, account.pw_uid, account.pw_gid)
        self.base.chmod(0o700)

    def _run(self, *arguments: str, timeout: float = 60) -> subprocess.CompletedProcess:
        command = [str(self.binaries / arguments[0]), *arguments[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=True, cwd="/"
        )

    def init(self) -> None:
        """Create the cluster: trust authentication, UTF-8."""
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "-N"
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-o", options,
            "-w", "-t", "30", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast` disconnects clients, `immediate` is a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def processes(self) -> list[int]:
        """Return the pids of the postmaster and every process it started."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        return [postmaster, *children_of(postmaster)]

    def freeze(self) -> list[int]:
        """Stop every server process (SIGSTOP): alive for TCP, answering nothing."""
        frozen = self.processes()
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        return frozen

    @staticmethod
    def thaw(frozen: list[int]) -> None:
        """Let frozen server processes run again."""
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def url(self, database: str) -> str:
        """Return the SQLAlchemy URL of a database on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create a database and return its URL."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        """Stop the server if it runs and remove its files."""
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


def write_config(directory: Path, **settings: str) -> Path:
    """Write a copy of the default configuration with top-level keys replaced."""
    text = DEFAULT_CONFIG.read_text()
    lines = text.splitlines()
    for key, value in settings.items():
        matches = [i for i, line in enumerate(lines) if line.startswith(f"{key} = ")]
        assert len(matches) == 1, f"{key} is not a top-level key of the default configuration"
        lines[matches[0]] = f"{key} = {value}"
    path = directory / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class IvrServer:
    """A real `ivr serve` (gunicorn master and workers) on a free port."""

    def __init__(self, workdir: Path, database_url: str, *, config: Path, workers: int = 2):
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.logfile = workdir / "serve.log"
        self.workers = workers
        self.env = {
            **os.environ,
            "IVR_CONFIG": str(config),
            "IVR_DATABASE_URL": database_url,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "IVR_SECRET_KEY": SECRET_KEY,
            "IVR_PUBLIC_URL": PUBLIC_URL,
        }
        self.process: subprocess.Popen | None = None
        self.http = requests.Session()

    def start(self) -> IvrServer:
        with open(self.logfile, "ab") as log:
            self.process = subprocess.Popen(
                [IVR, "serve", "--port", str(self.port), "--workers", str(self.workers)],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._healthy, timeout=STARTUP_SECONDS, what=f"ivr serve on {self.port}")
        return self

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"ivr serve exited:\n{self.log()[-3000:]}")
        try:
            return requests.get(self.base_url + "/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def log(self) -> str:
        return self.logfile.read_text(errors="replace")

    def reload(self) -> None:
        """Ask gunicorn for a graceful reload, as a deploy does."""
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        self.http.close()  # idle keep-alive connections would hold up gunicorn's shutdown
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def ivr(self, *arguments: str) -> subprocess.CompletedProcess:
        """Run an `ivr` command with this server's configuration."""
        return subprocess.run(
            [IVR, *arguments],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def post(self, path: str, form: dict, *, timeout: float = 10) -> requests.Response:
        """Post a webhook signed like Twilio signs it for our public URL."""
        headers = {"X-Twilio-Signature": sign(PUBLIC_URL + path, form)}
        return self.http.post(self.base_url + path, data=form, headers=headers, timeout=timeout)


@pytest.fixture(scope="module")
def postgres():
    """Start a PostgreSQL server of the module's own; stop and remove it afterwards.

    A fixture: a test module binds it (`postgres = real_servers.postgres`). Skips where no
    server binaries are installed, or as root without `runuser`.
    """
    binaries = postgres_binaries()
    if binaries is None:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as postgres")
    server = PostgresServer(binaries)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()
