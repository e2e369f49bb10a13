"""Set up a checkout for `bench.incident` through its own commands: the same for an old one.

Its organisations (`ivr directory import`), engineers (`ivr staff add`), rota (`ivr oncall
import`) and hours (`ivr hours set open`), each run by the checkout's own `ivr` (the target of
its console script), so the set-up does not depend on the code layout of the version under test.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import tomllib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

# The engineers of the scenario: name, phone, rota level.
ENGINEERS = {
    "anna": ("Anna Jansen", "+31620000001", 1),
    "bas": ("Bas de Vries", "+31620000002", 1),
    "carla": ("Carla Smit", "+31620000003", 2),
}


def caller_number(n: int) -> str:
    """Return organisation n's super user's mobile."""
    return f"+3163{n:07d}"


def ivr_command(tree: Path) -> list[str]:
    """Return the command that runs the checkout's own `ivr` (its console script's target)."""
    with open(tree / "pyproject.toml", "rb") as file:
        target = tomllib.load(file)["project"]["scripts"]["ivr"]
    module, function = target.split(":")
    return [sys.executable, "-c", f"from {module} import {function}; {function}()"]


def _run(tree: Path, env: dict, workdir: Path, *args: str, stdin: str | None = None) -> None:
    done = subprocess.run(
        [*ivr_command(tree), *args],
        env=env,
        cwd=workdir,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ivr {' '.join(args)} failed: {done.stderr.strip()[-500:]}")


def _calendar(people: list[str], now: datetime) -> str:
    stamp = "%Y%m%dT%H%M%SZ"
    events = []
    for who in people:
        name, _, _ = ENGINEERS[who]
        events += [
            "BEGIN:VEVENT",
            f"UID:{who}-{uuid.uuid4().hex}@bench",
            f"DTSTAMP:{now.strftime(stamp)}",
            f"DTSTART:{(now - timedelta(days=1)).strftime(stamp)}",
            f"DTEND:{(now + timedelta(days=2)).strftime(stamp)}",
            f"SUMMARY:{name}",
            f"ATTENDEE;CN={name}:mailto:{who}@bench.example",
            "END:VEVENT",
        ]
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//incident//EN", *events]
    return "\r\n".join([*lines, "END:VCALENDAR", ""])


def seed(tree: Path, env: dict, workdir: Path, organisations: int) -> None:
    """Add the organisations, the engineers and the rota through the checkout's commands."""
    rows = ["organization,name,email,role,phone,pin"]
    for n in range(1, organisations + 1):
        rows.append(
            f"Klant {n:02d},Super {n:02d},super{n}@klant{n}.example,super_user,{caller_number(n)},"
        )
    directory = workdir / "directory.csv"
    directory.write_text("\n".join(rows) + "\n")
    _run(tree, env, workdir, "directory", "import", str(directory))
    for who, (name, phone, _) in ENGINEERS.items():
        password = secrets.token_urlsafe(12)
        _run(tree, env, workdir, "staff", "add", f"{who}@bench.example", "--name", name,
             "--phone", phone, stdin=f"{password}\n{password}\n")  # fmt: skip
    now = datetime.now(UTC)
    for level in (1, 2):
        people = [who for who, (_, _, at) in ENGINEERS.items() if at == level]
        calendar = workdir / f"level{level}.ics"
        calendar.write_text(_calendar(people, now))
        _run(tree, env, workdir, "oncall", "import", str(calendar), "--level", str(level))
    _run(tree, env, workdir, "hours", "set", "open")
