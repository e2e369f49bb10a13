"""Measure the code's shape: package cycles, commit sites, big modules and a traced call.

    .venv/bin/python -m bench.shape

Prints, for the packages of this checkout (`app`, `core`, `ivr`, `tickets`, those that exist):

- the import cycles between siblings (the modules and subpackages of one package, at any
  depth), from the import graph grimp builds, as import-linter's `acyclic_siblings` does;
- the `commit()` call sites, by file;
- the largest modules, and every function over 60 lines;
- a trace of `POST /voice/incoming` for a known super user: the project files the call passes
  through, how often it returns to a file it had already left, and how often it crosses
  between the telephone side (`ivr`) and the ticket side (`tickets`).
"""

from __future__ import annotations

import ast
import importlib
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CANDIDATES = ("app", "core", "ivr", "tickets")
LONG_FUNCTION = 60


def packages_here() -> list[str]:
    """Return the top-level packages of this checkout."""
    return [name for name in CANDIDATES if (ROOT / name / "__init__.py").exists()]


def source_files(tops: list[str]) -> list[Path]:
    """Return every Python file of the packages, migrations left out."""
    files = []
    for top in tops:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "migrations" not in path.parts:
                files.append(path)
    return files


def sibling_cycles(tops: list[str]) -> list[list[str]]:
    """Return the import cycles between siblings: the children of one package, at any depth.

    A child is a module, or a subpackage with everything below it, as import-linter's
    `acyclic_siblings` contract sees them; the top-level packages are siblings too.
    """
    import grimp

    graph = grimp.build_graph(*tops, include_external_packages=False)
    modules = {module for module in graph.modules if ".migrations" not in module}
    imports = {
        module: set(graph.find_modules_directly_imported_by(module)) & modules for module in modules
    }
    cycles = []
    for parent in sorted({module.rpartition(".")[0] for module in modules} | {""}):
        edges = _sibling_edges(imports, parent)
        cycles += [sorted(group) for group in _strong_components(edges) if len(group) > 1]
    return cycles


def _sibling_edges(imports: dict[str, set[str]], parent: str) -> dict[str, set[str]]:
    """Return the imports between the children of `parent` ('' for the top level)."""
    depth = parent.count(".") + 1 if parent else 0

    def child(module: str) -> str | None:
        if parent and not module.startswith(parent + "."):
            return None
        return ".".join(module.split(".")[: depth + 1])

    edges: dict[str, set[str]] = {}
    for module, targets in imports.items():
        source = child(module)
        if source is None:
            continue
        edges.setdefault(source, set())
        for target in targets:
            sibling = child(target)
            if sibling is not None and sibling != source:
                edges[source].add(sibling)
                edges.setdefault(sibling, set())
    return edges


def _strong_components(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                groups.append(group)
    return groups


def commit_sites(files: list[Path]) -> Counter:
    """Return the number of `.commit()` calls per file."""
    sites: Counter = Counter()
    for path in files:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "commit"
                and not node.args
            ):
                sites[str(path.relative_to(ROOT))] += 1
    return sites


def long_functions(files: list[Path]) -> list[tuple[int, str]]:
    """Return (lines, place) of every function longer than LONG_FUNCTION lines."""
    found = []
    for path in files:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > LONG_FUNCTION:
                    found.append((length, f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"))
    return sorted(found, reverse=True)


def trace_incoming_call(tops: list[str]) -> list[str]:
    """Return the project files, in order, that one recognised super user's first webhook runs."""
    workdir = Path(tempfile.mkdtemp(prefix="ivr-shape-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(workdir)
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import EMERGENCY_NUMBER, MONDAY_MORNING, SECRET_KEY, Call, build_settings

    # The shell's home: `app` since the layering, `ivr` before it (for measuring old commits).
    shell = "app" if "app" in tops else "ivr"
    create_app = importlib.import_module(shell).create_app
    upgrade_database = importlib.import_module(shell + ".schema").upgrade_database

    url = f"sqlite:///{workdir / 'shape.sqlite3'}"
    upgrade_database(url)
    application = create_app(build_settings(url, workdir))
    # A working Monday morning, so the emergency line is open whatever the hour of the run.
    application.config["CLOCK"] = lambda: MONDAY_MORNING
    _seed_super_user(application, SECRET_KEY)
    client = application.test_client()
    # Warm up: the first request imports lazily loaded modules; trace the second call.
    Call(client, to=EMERGENCY_NUMBER, from_="+31612345678").start()
    visited: list[str] = []
    prefixes = tuple(str(ROOT / top) + os.sep for top in tops)

    def profile(frame, event, _arg):
        if event != "call":
            return
        filename = frame.f_code.co_filename
        if filename.startswith(prefixes):
            relative = str(Path(filename).relative_to(ROOT))
            if not visited or visited[-1] != relative:
                visited.append(relative)

    call = Call(client, to=EMERGENCY_NUMBER, from_="+31612345678")
    sys.setprofile(profile)
    try:
        call.start()
    finally:
        sys.setprofile(None)
    return visited


def _seed_super_user(application, secret: str) -> None:
    from tickets.directory import import_directory

    try:
        from core.db import db
    except ImportError:
        from core.db import db
    rows = "organization,name,email,role,phone,pin\n"
    rows += "Shape Uitzendbureau,Sanne de Vries,sanne@shape.example,super_user,+31612345678,\n"
    with application.app_context():
        import_directory(db.session, rows, secret=secret)


def summarise_trace(visited: list[str]) -> dict[str, int]:
    """Count files, returns to a file already left, and crossings between ivr and tickets."""
    seen: set[str] = set()
    returns = 0
    for name in visited:
        if name in seen:
            returns += 1
        seen.add(name)
    sides = [name.split(os.sep)[0] for name in visited]
    crossings = sum(
        1
        for before, after in zip(sides, sides[1:], strict=False)
        if {before, after} == {"ivr", "tickets"}
    )
    return {"files": len(seen), "returns": returns, "crossings": crossings}


def main() -> int:
    tops = packages_here()
    files = source_files(tops)
    print(f"packages: {', '.join(tops)}  ({len(files)} modules, migrations left out)")
    cycles = sibling_cycles(tops)
    print(f"\nimport cycles between siblings: {len(cycles)}")
    for group in cycles:
        print("  " + " <-> ".join(group))
    sites = commit_sites(files)
    print(f"\ncommit() call sites: {sum(sites.values())} in {len(sites)} files")
    for name, count in sites.most_common():
        print(f"  {count:3d}  {name}")
    sizes = sorted(((len(path.read_text().splitlines()), path) for path in files), reverse=True)
    print("\nlargest modules (lines):")
    for lines, path in sizes[:5]:
        print(f"  {lines:5d}  {path.relative_to(ROOT)}")
    longs = long_functions(files)
    print(f"\nfunctions over {LONG_FUNCTION} lines: {len(longs)}")
    for length, place in longs:
        print(f"  {length:4d}  {place}")
    visited = trace_incoming_call(tops)
    figures = summarise_trace(visited)
    print(
        "\nPOST /voice/incoming, known super user: "
        f"{figures['files']} files, {figures['returns']} returns to a file already visited, "
        f"{figures['crossings']} crossings between ivr and tickets"
    )
    counts = Counter(visited)
    print("  entered most: " + ", ".join(f"{n} x{c}" for n, c in counts.most_common(5)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
