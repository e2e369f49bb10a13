"""The shape of the code: the import-linter contracts in pyproject.toml hold.

They are the rules of the design (the shell over the telephone side over the ticket side over
core; a layer per job inside each side; no import cycles), so breaking one fails the suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# A process of its own, waited for with a timeout: libfaketime breaks that wait (.ci/run).
pytestmark = pytest.mark.wall_clock
PACKAGES = ("app", "core", "ivr", "tickets")
LINT = (
    "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
)


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    """Run import-linter over the packages of `tree`, in a process of its own."""
    environ = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [sys.executable, "-c", LINT],
        cwd=tree,
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_import_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_the_ticket_side_importing_the_telephone_side_breaks_a_contract(tmp_path):
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    labels = tmp_path / "tickets" / "labels.py"
    labels.write_text(labels.read_text() + "\nfrom ivr import flow  # noqa: E402,F401\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout[-4000:]
    assert "tickets.labels -> ivr.flow" in result.stdout
