"""The deployment files in ops/ and docs/deployment.md: the systemd unit, Caddy, backups.

systemd and Caddy are Debian's packages (`.ci/run` installs them); without them their tests are
skipped with a message. The restore test needs PostgreSQL and its `pg_dump`. Every test that
waits for a process is `wall_clock`: libfaketime breaks the sleeps of Python's wait.
"""

from __future__ import annotations

import configparser
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from helpers import OFFICE_NUMBER, PUBLIC_URL, sign
from real_servers import IVR, IvrServer, empty_tables, free_port, wait_until, write_config
from sqlalchemy import create_engine, make_url, text

from app.schema import alembic_config, upgrade_database
from core.settings import ENV_OVERRIDES, PROJECT_ROOT

OPS = PROJECT_ROOT / "ops"
UNIT = OPS / "systemd" / "otys-ivr.service"
ENV_EXAMPLE = OPS / "systemd" / "otys-ivr.env.example"
CADDYFILE = OPS / "caddy" / "Caddyfile"
SHIPPED_EXEC = "ExecStart=/opt/otys-ivr/current/bin/ivr serve"
SHIPPED_SITE = "ivr.example.com {"
SHIPPED_UPSTREAM = "reverse_proxy 127.0.0.1:8000 {"


def unit_settings() -> dict[str, str]:
    """Return the unit's [Service] settings (each key once in our unit)."""
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str
    parser.read_string(UNIT.read_text())
    return dict(parser["Service"])


def database_for(tmp_path: Path, name: str) -> str:
    """Return the suite's PostgreSQL database, emptied, or a fresh SQLite file."""
    url = os.environ.get("IVR_TEST_DATABASE_URL") or f"sqlite:///{tmp_path / name}"
    upgrade_database(url)
    empty_tables(url)
    return url


def test_the_unit_runs_ivr_serve_with_its_environment_file_restarts_and_file_limit():
    service = unit_settings()
    assert UNIT.read_text().count(SHIPPED_EXEC) == 1
    assert service["Type"] == "notify"
    assert service["Restart"] == "always"
    assert service["EnvironmentFile"] == "/etc/otys-ivr/otys-ivr.env"
    # Two workers of 1,000 connections each, and their database connections and files.
    assert int(service["LimitNOFILE"]) >= 4096
    # gunicorn's graceful stop (20 s) fits within systemd's.
    assert int(service["TimeoutStopSec"]) > 20


@pytest.mark.wall_clock
@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not installed (apt-get install systemd; .ci/run does)",
)
def test_the_unit_passes_systemd_analyze_verify(tmp_path):
    # /opt/otys-ivr exists only on a real host: the copy runs this environment's ivr instead.
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(SHIPPED_EXEC, f"ExecStart={IVR} serve"))
    checked = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # It exits 0 on a key it does not know or a value it cannot parse: any line is a failure.
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


def test_the_environment_file_example_sets_only_what_the_service_reads():
    names = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert names <= set(ENV_OVERRIDES)
    assert {"IVR_SECRET_KEY", "TWILIO_AUTH_TOKEN", "IVR_DATABASE_URL", "IVR_PUBLIC_URL"} <= names


@pytest.mark.wall_clock
def test_ivr_serve_tells_systemd_when_it_listens_as_type_notify_expects(tmp_path):
    url = database_for(tmp_path, "notify.sqlite3")
    server = IvrServer(tmp_path / "serve", url, config=write_config(tmp_path), workers=1)
    # A socket path must stay under 108 bytes: a short directory of its own.
    directory = Path(tempfile.mkdtemp(prefix="ivr-notify-", dir="/tmp"))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        listener.bind(str(directory / "notify"))
        listener.settimeout(60)
        server.env["NOTIFY_SOCKET"] = str(directory / "notify")
        with open(server.logfile, "ab") as log:
            server.process = subprocess.Popen(
                [IVR, "serve", "--port", str(server.port), "--workers", "1"],
                cwd=server.workdir,
                env=server.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        message = listener.recv(4096).decode()
        assert "READY=1" in message.splitlines(), message
        # Ready means listening: the first request is answered, not refused.
        health = requests.get(server.base_url + "/health", timeout=30)
        assert health.status_code == 200
    finally:
        server.stop()
        listener.close()
        shutil.rmtree(directory, ignore_errors=True)
        empty_tables(url)


def caddy_or_skip() -> str:
    caddy = shutil.which("caddy")
    if caddy is None:
        pytest.skip("caddy not installed (apt-get install caddy; .ci/run does)")
    return caddy


def caddy_environment(tmp_path: Path) -> dict[str, str]:
    """Keep Caddy's own files (certificates, autosave) in the test's directory."""
    return {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "caddy-data"),
        "XDG_CONFIG_HOME": str(tmp_path / "caddy-config"),
    }


@pytest.mark.wall_clock
def test_the_caddyfile_is_valid_and_formatted(tmp_path):
    caddy = caddy_or_skip()
    checked = subprocess.run(
        [caddy, "validate", "--adapter", "caddyfile", "--config", str(CADDYFILE)],
        env=caddy_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "not formatted" not in checked.stdout + checked.stderr
    formatted = subprocess.run(
        [caddy, "fmt", str(CADDYFILE)], capture_output=True, text=True, timeout=60, check=True
    )
    assert formatted.stdout == CADDYFILE.read_text()


def local_caddyfile(caddy_port: int, upstream_port: int) -> str:
    """Return the shipped Caddyfile on plain HTTP at a local port, in front of a test server."""
    shipped = CADDYFILE.read_text()
    assert SHIPPED_SITE in shipped and SHIPPED_UPSTREAM in shipped
    local = shipped.replace(SHIPPED_SITE, f"http://127.0.0.1:{caddy_port} {{")
    local = local.replace(SHIPPED_UPSTREAM, f"reverse_proxy 127.0.0.1:{upstream_port} {{")
    # No admin endpoint: another Caddy on this machine may hold its port.
    return "{\n\tadmin off\n}\n\n" + local


class Caller(threading.Thread):
    """Post a signed incoming-call webhook through Caddy every 50 ms until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.answers: list[tuple[int, float]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            form = {
                "CallSid": "CA" + uuid.uuid4().hex,
                "To": OFFICE_NUMBER,
                "From": "+31612345678",
                "CallStatus": "ringing",
            }
            headers = {
                "X-Twilio-Signature": sign(PUBLIC_URL + "/voice/incoming", form),
                "Connection": "close",
            }
            began = time.monotonic()
            try:
                status = requests.post(self.url, data=form, headers=headers, timeout=20).status_code
            except requests.RequestException:
                status = 0
            self.answers.append((status, time.monotonic() - began))
            time.sleep(0.05)


@pytest.mark.wall_clock
def test_caddy_holds_webhooks_while_ivr_serve_restarts_so_none_is_lost(tmp_path):
    caddy = caddy_or_skip()
    url = database_for(tmp_path, "restart.sqlite3")
    config = write_config(tmp_path, trusted_proxies='["127.0.0.1", "::1"]')
    first = IvrServer(tmp_path / "first", url, config=config, workers=1).start()
    second = IvrServer(tmp_path / "second", url, config=config, workers=1)
    second.port, second.base_url = first.port, first.base_url
    caddy_port = free_port()
    (tmp_path / "Caddyfile").write_text(local_caddyfile(caddy_port, first.port))
    proxy = subprocess.Popen(
        [caddy, "run", "--adapter", "caddyfile", "--config", str(tmp_path / "Caddyfile")],
        env=caddy_environment(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    caller = Caller(f"http://127.0.0.1:{caddy_port}/voice/incoming")
    try:
        through = f"http://127.0.0.1:{caddy_port}/health"
        wait_until(lambda: _answers(through), timeout=30, what="caddy in front of ivr serve")
        caller.start()
        time.sleep(1)
        first.stop()  # SIGTERM, as systemctl restart sends; then the new release starts
        second.start()
        time.sleep(1)
    finally:
        caller.stopping.set()
        caller.join(timeout=30)
        proxy.terminate()
        proxy.wait(timeout=30)
        first.stop()
        second.stop()
        empty_tables(url)
    statuses = [status for status, _seconds in caller.answers]
    held = [seconds for _status, seconds in caller.answers if seconds > 1]
    assert held, "no webhook arrived while ivr serve was down"
    assert set(statuses) == {200}, statuses


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _libpq(url: str) -> str:
    """Return a SQLAlchemy PostgreSQL URL as the libpq URL pg_dump and pg_restore take."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.mark.postgres
@pytest.mark.wall_clock
@pytest.mark.skipif(
    not os.environ.get("IVR_TEST_DATABASE_URL") or shutil.which("pg_dump") is None,
    reason="needs PostgreSQL (IVR_TEST_DATABASE_URL) and pg_dump",
)
def test_a_backup_restores_into_a_fresh_database_and_the_migrations_bring_it_up_to_date(
    tmp_path,
):
    from alembic.script import ScriptDirectory

    base = make_url(os.environ["IVR_TEST_DATABASE_URL"])
    source = base.set(database=f"{base.database}_backup_source").render_as_string(False)
    restored = base.set(database=f"{base.database}_backup_restored").render_as_string(False)
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    names = [make_url(source).database, make_url(restored).database]
    scripts = ScriptDirectory.from_config(alembic_config(source))
    head = scripts.get_current_head()
    older = scripts.get_revision(head).down_revision
    try:
        with admin.connect() as connection:
            for name in names:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        # A backup made by the release before this one, with something in it.
        from alembic import command

        command.upgrade(alembic_config(source), older)
        _run_sql(source, "INSERT INTO organizations (name, created_at) VALUES ('Backup BV', now())")
        dump = tmp_path / "otys_ivr.dump"
        subprocess.run(
            ["pg_dump", "--format=custom", f"--file={dump}", _libpq(source)],
            check=True,
            timeout=120,
        )
        subprocess.run(
            ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={_libpq(restored)}", dump],
            check=True,
            timeout=120,
        )
        assert _run_sql(restored, "SELECT version_num FROM alembic_version") == [(older,)]
        upgrade_database(restored)  # what `ivr serve` does before it listens
        assert _run_sql(restored, "SELECT version_num FROM alembic_version") == [(head,)]
        assert _run_sql(restored, "SELECT name FROM organizations") == [("Backup BV",)]
    finally:
        with admin.connect() as connection:
            for name in names:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _run_sql(url: str, statement: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            result = connection.execute(text(statement))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()
