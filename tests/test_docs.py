"""The documentation: a site that builds with every link and anchor resolved, and a short README."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from pymdownx.slugs import slugify

from core.settings import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
DOCS = PROJECT_ROOT / "docs"
# The front page stays a front page; the reference lives in docs/.
README_MOST_BYTES = 20 * 1024
# Pages the README need not list: the site's home (the README itself) and the changelog.
NOT_LISTED = {"index.md", "changelog.md"}
# An inline Markdown link or image: [text](target), outside code.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.+?)\s*$")
GITHUB_SLUG = slugify(case="lower")


def build_site(target) -> subprocess.CompletedProcess:
    """Build the site as CI does: `mkdocs build --strict`, into `target`."""
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(target)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def links_outside_code(text: str) -> list[str]:
    """Return the targets of the Markdown links in `text`, leaving out fenced and inline code."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return LINK.findall(text)


def anchors_of(path) -> set[str]:
    """Return the anchors GitHub (and the site, configured alike) gives the headings of a page."""
    anchors, fenced = set(), False
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (match := HEADING.match(line)):
            anchors.add(GITHUB_SLUG(match.group(1), "-"))
    return anchors


# A process waited for with a timeout: Python's wait sleeps, which libfaketime breaks (.ci/run).
@pytest.mark.wall_clock
def test_the_site_builds_strictly_so_every_link_and_anchor_resolves(tmp_path):
    built = build_site(tmp_path / "site")
    assert built.returncode == 0, built.stdout + built.stderr
    assert "WARNING" not in built.stderr, built.stderr
    home = (tmp_path / "site" / "index.html").read_text()
    # The README's sections are the site's home page, included rather than copied.
    for words in ("Quick start", "Place a simulated call", "Mind the hours"):
        assert words in home
    deployment = (tmp_path / "site" / "deployment.html").read_text()
    assert "LimitNOFILE=65536" in deployment and "lb_try_duration" in deployment
    # The architecture page quotes the import contracts from pyproject.toml itself.
    architecture = (tmp_path / "site" / "architecture.html").read_text()
    assert "acyclic_siblings" in architecture and "exhaustive_ignores" in architecture


def test_the_readme_is_a_front_page_of_at_most_20_kb():
    size = len(README.read_bytes())
    assert size <= README_MOST_BYTES, f"README.md is {size} bytes; move reference to docs/"


def test_every_link_of_the_readme_and_the_pages_on_github_resolves():
    # The site checks links between pages; GitHub shows the README and the pages as they are.
    broken = []
    for page in [README, *sorted(DOCS.glob("*.md"))]:
        for target in links_outside_code(page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in anchors_of(file):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []


def test_the_readme_says_where_every_page_is():
    linked = {
        target.removeprefix("docs/").partition("#")[0]
        for target in links_outside_code(README.read_text())
    }
    pages = {page.name for page in DOCS.glob("*.md")} - NOT_LISTED
    assert pages - linked == set()


def test_the_front_page_warns_about_the_hours_where_the_simulated_call_is():
    text = README.read_text()
    call = text.index("### Place a simulated call")
    warning = text.index("**Mind the hours.**")
    assert call < warning < text.index("## Where to read on")
    assert ".venv/bin/ivr hours set open" in text[warning:]


def test_the_architecture_page_maps_every_module_of_the_four_packages():
    # A module added to a layer (the contracts are exhaustive) is added to the map too: by its
    # path (`ivr/flow.py`, `ivr/voice/`) or, inside a subpackage's row, by its name (`routes`).
    page = (DOCS / "architecture.md").read_text()
    missing = []
    for package in ("app", "core", "ivr", "tickets"):
        for child in sorted((PROJECT_ROOT / package).iterdir()):
            if child.name.startswith(("_", ".")) or child.name in ("migrations", "templates"):
                continue
            path = f"{package}/{child.name}"
            if child.is_dir() and (child / "__init__.py").exists():
                if f"`{path}/" not in page:
                    missing.append(f"{path}/")
                modules = [m.stem for m in child.glob("*.py") if not m.name.startswith("_")]
                missing += [f"{path}/{m}.py" for m in sorted(modules) if f"`{m}`" not in page]
            elif child.suffix == ".py" and f"{path}`" not in page and f"`{child.stem}`" not in page:
                missing.append(path)
    assert missing == []
