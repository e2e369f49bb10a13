"""Start and stop the servers under test, and read their CPU time and memory from /proc."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def service_environment(
    *,
    database_url: str,
    public_url: str,
    auth_token: str,
    workdir: Path,
    account_sid: str,
    api_url: str,
    sms_from: str,
    pythonpath: str,
) -> dict[str, str]:
    """Return the environment of an `ivr serve` a bench starts: this one without its own IVR_
    and TWILIO_ settings, fresh secrets, and paging on through the bench's Twilio stand-in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))}
    env.update(
        {
            "IVR_DATABASE_URL": database_url,
            "TWILIO_AUTH_TOKEN": auth_token,
            "IVR_SECRET_KEY": secrets.token_hex(32),
            "IVR_PUBLIC_URL": public_url,
            "IVR_JOURNAL_PATH": str(workdir / "journal.jsonl"),
            "TWILIO_ACCOUNT_SID": account_sid,
            "TWILIO_API_URL": api_url,
            "IVR_SMS_FROM": sms_from,
            "PYTHONPATH": pythonpath,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def free_port() -> int:
    """Return a TCP port on the loopback interface that nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stat_fields(pid: int) -> list[str] | None:
    """Return the fields of /proc/<pid>/stat after the command name, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def process_cpu_seconds(pid: int, *, with_children: bool = False) -> float:
    """Return user+system CPU seconds of a process (plus its reaped children's)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # Fields after the name start at "state" (field 3): utime is 14, stime 15, cutime 16, cstime 17.
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def children_of(pid: int) -> list[int]:
    """Return the pids whose parent is `pid`."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def memory_kib(pid: int) -> dict[str, int]:
    """Return VmRSS, VmHWM and Threads of a process (KiB for the sizes)."""
    values = {}
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return values
    for line in lines:
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "Threads"):
            values[key] = int(rest.split()[0])
    return values


def postgres_backends(database: str) -> list[int]:
    """Return the pids of PostgreSQL backends connected to `database` on this machine."""
    pids = []
    marker = f" {database} ".encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"postgres: ") and marker in cmdline:
            pids.append(int(entry.name))
    return pids


class Server:
    """A gunicorn server the bench started in its own process group."""

    def __init__(
        self, name: str, argv: list[str], *, env: dict, cwd: Path, port: int, log: Path
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.port = port
        self.log_path = log
        self.process: subprocess.Popen | None = None
        self.peak_rss_kib: dict[int, int] = {}
        self.threads: dict[int, int] = {}
        self._workers: list[int] = []
        self._sampling = threading.Event()
        self._sampler: threading.Thread | None = None

    def start(self, *, workers: int, timeout: float = 60.0) -> None:
        """Start the server and wait until it accepts connections with all its workers."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}; see {self.log_path}"
                )
            if len(children_of(self.pid)) >= workers and self._accepts():
                self._sampling.set()
                self._sampler = threading.Thread(target=self._sample_memory, daemon=True)
                self._sampler.start()
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start within {timeout:.0f} s; see {self.log_path}")

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def workers(self) -> list[int]:
        """Return the pids of the gunicorn workers (scanning /proc again only when one left)."""
        if self.process is None:
            return []
        if not self._workers or not all(Path(f"/proc/{pid}").exists() for pid in self._workers):
            self._workers = children_of(self.pid)
        return list(self._workers)

    def cpu_seconds(self) -> float:
        """Return the CPU seconds used so far by the master and every worker, live or reaped."""
        total = process_cpu_seconds(self.pid, with_children=True)
        return total + sum(process_cpu_seconds(pid) for pid in self.workers())

    def _sample_memory(self) -> None:
        while self._sampling.is_set():
            self.sample_memory()
            time.sleep(0.5)

    def sample_memory(self) -> None:
        """Note each worker's resident memory and thread count now, keeping the peak."""
        for pid in self.workers():
            values = memory_kib(pid)
            peak = max(values.get("VmRSS", 0), values.get("VmHWM", 0))
            self.peak_rss_kib[pid] = max(self.peak_rss_kib.get(pid, 0), peak)
            if "Threads" in values:
                self.threads[pid] = values["Threads"]

    def stop(self, *, timeout: float = 25.0) -> None:
        """Stop the server gracefully; kill its process group if it does not stop in time."""
        self._sampling.clear()
        if self.process is None or self.process.poll() is not None:
            return
        self.sample_memory()
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        except ProcessLookupError:
            pass
