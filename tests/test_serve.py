import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from ivr.models import CallLog

IVR = str(Path(sys.executable).parent / "ivr")
TOKEN = "serve-test-twilio-token-0123456789"
SECRET = "serve-test-secret-key-0123456789abcdef"
WORKERS = 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def children_of(pid: int) -> list[int]:
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


class Server:
    """A real `ivr serve` process on a free port."""

    def __init__(self, workdir: Path, database_url: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.log = workdir / "serve.log"
        self.env = {
            **os.environ,
            "IVR_DATABASE_URL": database_url,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "IVR_SECRET_KEY": SECRET,
            "IVR_PUBLIC_URL": self.url,
        }
        self.env.pop("IVR_CONFIG", None)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [IVR, "serve", "--port", str(self.port), "--workers", str(WORKERS)],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"ivr serve exited early:\n{self.log.read_text()}")
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"ivr serve did not answer /health in 20 s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=25)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def ivr(self, *arguments: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [IVR, *arguments],
            cwd=self.workdir,
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=90,
        )

    def call(self, *arguments: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return self.ivr("call", "--url", self.url, *arguments, env=env)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("serve")
    database_url = os.environ.get("IVR_TEST_DATABASE_URL") or (
        f"sqlite:///{workdir / 'serve.sqlite3'}"
    )
    running = Server(workdir, database_url)
    try:
        running.start()
        yield running
    finally:
        running.stop()


def call_sid(output: str) -> str:
    match = re.search(r"CallSid (CA[0-9a-f]{32})", output)
    assert match, output
    return match.group(1)


def test_health_answers_json_with_the_database_ok(server):
    response = requests.get(server.url + "/health", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"status": "ok", "database": "ok"}


def test_gunicorn_master_runs_its_workers(server):
    log = server.log.read_text()
    assert f"Listening at: {server.url}" in log
    assert log.count("Booting worker with pid") >= WORKERS
    assert len(children_of(server.process.pid)) == WORKERS


def test_unsigned_webhook_is_refused(server):
    response = requests.post(
        server.url + "/voice/incoming", data={"To": "+31318584900"}, timeout=10
    )
    assert response.status_code == 403


def test_office_call_hears_the_dutch_greeting_and_is_logged(server):
    result = server.call("--to", "office", "--keys", "hangup")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[nl-NL] Welkom bij OTYS." in result.stdout
    assert "-> POST /voice/status" in result.stdout
    engine = create_engine(server.env["IVR_DATABASE_URL"])
    try:
        with Session(engine) as session:
            log = session.scalar(select(CallLog).where(CallLog.sid == call_sid(result.stdout)))
            assert log is not None
            assert log.status == "completed"
            assert log.line == "office"
    finally:
        engine.dispose()


def test_emergency_call_is_answered_in_dutch(server):
    result = server.call("--to", "emergency", "--keys", "hangup")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Calling +31318584918" in result.stdout
    assert "[nl-NL] " in result.stdout


def test_a_call_signed_with_the_wrong_token_is_refused(server):
    result = server.call("--keys", "hangup", env={"TWILIO_AUTH_TOKEN": "not-the-right-token-123"})
    assert result.returncode == 1
    assert "HTTP 403" in result.stdout
