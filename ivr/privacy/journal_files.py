"""The outage journal on disk holds callers' numbers, words and recordings too.

Its archives (journals fully replayed, kept for reference) are deleted once older than the
shortest retention period: everything in them is in the database. A person's entries, in the
journal and its archives, are found for an export and anonymised for an erasure; the journal
still waiting for replay keeps its entries, without the person, so their call still becomes
a ticket. Only this host's files are reached: each host has its own journal.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from ivr.outage.journal import Entry, Journal
from ivr.privacy.recordings import recording_sid

ARCHIVE_STAMP = re.compile(r"\.replayed-(\d{8}T\d{6}\d{0,6})Z$")
# What in an entry is the caller's: their number, their words, their recording.
PERSONAL_KEYS = ("from", "caller", "text", "url", "recording_sid")


def _archived_at(path: Path) -> datetime:
    """Return when a journal was archived: from its name, else from the file."""
    match = ARCHIVE_STAMP.search(path.name)
    if match:
        with contextlib.suppress(ValueError):
            return datetime.strptime(match.group(1), "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def purge_archives(journal: Journal, *, before: datetime) -> int:
    """Delete the journal's archives made before `before`; return how many."""
    count = 0
    for path in journal.archives():
        with contextlib.suppress(FileNotFoundError):
            if _archived_at(path) < before:
                path.unlink()
                count += 1
    return count


def journal_files(journal: Journal) -> list[Path]:
    """Return the journal's archives, oldest first, then the journal (when there is one)."""
    live = [journal.path] if journal.path.exists() else []
    return journal.archives() + live


def _names_them(entry: Entry, numbers: set[str]) -> bool:
    return any(entry.data.get(key) in numbers for key in ("from", "caller"))


def entries_about(
    journal: Journal, *, numbers: set[str], call_sids: Iterable[str]
) -> list[tuple[Path, Entry]]:
    """Return every entry of their calls: calls from their numbers, or known by their sid."""
    files = [(path, Journal(path).read().entries) for path in journal_files(journal)]
    sids = set(call_sids)
    sids.update(e.call_sid for _, entries in files for e in entries if _names_them(e, numbers))
    return [(path, e) for path, entries in files for e in entries if e.call_sid in sids]


def _anonymised(entry: Entry) -> tuple[Entry, str | None]:
    """Return the entry without what was the caller's, and the recording it named."""
    sid = recording_sid(entry.data.get("recording_sid"), entry.data.get("url"))
    data = {key: None if key in PERSONAL_KEYS else value for key, value in entry.data.items()}
    return Entry(entry.id, entry.kind, entry.call_sid, entry.at, data), sid


def _rewritten(content: bytes, sids: set[str]) -> tuple[bytes, int, set[str]]:
    """Return the file's content with the entries of these calls anonymised."""
    lines, changed, recordings = [], 0, set()
    for line in content.split(b"\n"):
        try:
            entry = Entry.from_line(line) if line.strip() else None
        except ValueError:
            entry = None  # a torn line stays as it was
        if entry is None or entry.call_sid not in sids:
            lines.append(line)
            continue
        clean, recording = _anonymised(entry)
        changed += clean != entry
        recordings.update([recording] if recording else [])
        lines.append(clean.to_line().rstrip(b"\n"))
    return b"\n".join(lines), changed, recordings


def _replace(path: Path, content: bytes) -> None:
    """Put `content` in place of the file at `path`, whole and durable."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.write(handle, content)
        os.fsync(handle)
    finally:
        os.close(handle)
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _same_file(path: Path, fd: int) -> bool:
    """Return whether `fd` is still the file at `path` (not one archived or replaced since)."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def scrub_file(path: Path, sids: set[str]) -> tuple[int, set[str]]:
    """Anonymise the entries of these calls in one journal file; return count and recordings.

    Under the journal's exclusive lock, like an append: a writer waiting meanwhile finds the
    file replaced and writes to the new one, as after an archive.
    """
    while True:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return 0, set()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not _same_file(path, fd):
                continue  # archived or replaced while we waited: read the file there now
            with open(fd, "rb", closefd=False) as handle:
                content = handle.read()
            rewritten, changed, recordings = _rewritten(content, sids)
            if changed:
                _replace(path, rewritten)
            return changed, recordings
        finally:
            os.close(fd)


def scrub_person(
    journal: Journal, *, numbers: set[str], call_sids: Iterable[str]
) -> tuple[int, set[str]]:
    """Anonymise a person's entries in the journal and its archives; return count, recordings."""
    about = entries_about(journal, numbers=numbers, call_sids=call_sids)
    sids = {entry.call_sid for _, entry in about}
    changed, recordings = 0, set()
    for path in journal_files(journal):
        count, found = scrub_file(path, sids)
        changed, recordings = changed + count, recordings | found
    return changed, recordings
