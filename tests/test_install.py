"""A plain `pip install` (no extras) has everything `ivr serve` needs: every distribution its
workers import is declared, and the default configuration is part of the package.

The test extras bring in more than production has (pytest pulls in `packaging`, which gunicorn's
gevent worker imports), so a module found here proves nothing: these tests compare what is
imported with what the project's own requirements reach. `.ci/run` also installs the project into
a fresh virtual environment and starts `ivr serve` until `/health` answers (.ci/serve-plain).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib.metadata import distribution
from pathlib import Path

import pytest
from helpers import AUTH_TOKEN, SECRET_KEY
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import core
from app.cli.demo import DEMO_DIRECTORY
from core.settings import DEFAULT_CONFIG, PROJECT_ROOT

PROJECT = "otys-ivr"
# Imported when it is there, done without when not (a `try: import ... except ImportError`).
OPTIONAL = {
    "pygments": "mako (Alembic's templates) colours its tracebacks with it",
    # mkdocs-material (the test extras build the documentation) brings it to the test environment
    "babel": "Flask-WTF translates its messages with it (`flask_wtf.form`)",
}
# What a gunicorn gevent worker of `ivr serve` imports: the worker class, then `_Gunicorn.load`,
# and the PostgreSQL driver production uses.
SERVING = """
import json, sys
from importlib.metadata import packages_distributions
at_start = set(sys.modules)  # the interpreter's own, and what site's .pth files load
import gunicorn.workers.ggevent, gunicorn.glogging
import app.cli, app.server, app.admission, app.background
import psycopg
from app import create_app
create_app()
names = packages_distributions()
imported = [m.split(".")[0] for m in set(sys.modules) - at_start]
print(json.dumps(sorted({d for m in imported for d in names.get(m, [])})))
"""


def declared(project: str) -> set[str]:
    """Return every distribution a plain install of `project` brings, by its requirements."""
    reached: set[tuple[str, frozenset]] = set()
    waiting = [(canonicalize_name(project), frozenset())]
    while waiting:
        name, extras = waiting.pop()
        if (name, extras) in reached:
            continue
        reached.add((name, extras))
        for line in distribution(name).requires or []:
            requirement = Requirement(line)
            wanted = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if requirement.marker and not any(map(requirement.marker.evaluate, wanted)):
                continue
            extras_wanted = frozenset(requirement.extras)
            waiting.append((canonicalize_name(requirement.name), extras_wanted))
    return {name for name, _ in reached}


@pytest.mark.wall_clock
def test_every_distribution_a_serving_worker_imports_is_declared(tmp_path):
    environ = {
        "PATH": "/usr/bin:/bin",
        "IVR_SECRET_KEY": SECRET_KEY,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "IVR_DATABASE_URL": f"sqlite:///{tmp_path / 'ivr.sqlite3'}",
    }
    imported = subprocess.run(
        [sys.executable, "-c", SERVING],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    used = {canonicalize_name(name) for name in json.loads(imported.stdout)}
    assert "gevent" in used and "gunicorn" in used  # the list is what it claims to be
    assert used - declared(PROJECT) - {canonicalize_name(PROJECT), *OPTIONAL} == set()


@pytest.mark.parametrize(
    ("packaged", "documented"),
    [(DEFAULT_CONFIG, "config/default.toml"), (DEMO_DIRECTORY, "config/demo-directory.csv")],
)
def test_the_default_configuration_and_demo_directory_are_package_data(packaged, documented):
    package = Path(core.__file__).parent
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["core"]
    assert packaged.is_relative_to(package)
    assert any(packaged.relative_to(package).match(pattern) for pattern in patterns)
    # The file the README and the operators know is the same file.
    assert packaged.read_bytes() == (PROJECT_ROOT / documented).read_bytes()
