import json
import logging
import multiprocessing
import stat
import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select

from ivr.models import JournalReplay
from ivr.outage.journal import Entry, Journal, entry_id
from ivr.outage.replay import replay, replay_engine
from tickets.models import Organization


def make_org(session, entry):
    """A handler shaped like a service function: it commits by itself."""
    session.add(Organization(name=entry.data["name"]))
    session.commit()
    return f"organisation {entry.data['name']}"


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "journal" / "journal.jsonl")


@pytest.fixture
def engine(app, settings):
    engine = replay_engine(settings.resolved_database_url, timeout_seconds=1.0)
    yield engine
    engine.dispose()


def org_names(session):
    session.expire_all()
    return sorted(session.scalars(select(Organization.name)).all())


def replayed_ids(session):
    session.expire_all()
    return sorted(session.scalars(select(JournalReplay.entry_id)).all())


def break_engine(engine):
    """Make every new connection of `engine` fail like an unreachable server."""
    error = engine.dialect.loaded_dbapi.OperationalError

    def refuse(*_args):
        raise error("connection refused (simulated outage)")

    engine.dispose()
    event.listen(engine, "do_connect", refuse)
    return refuse


def test_entry_ids_combine_call_sid_and_step_and_stay_short():
    assert entry_id("CA" + "a" * 32, "call") == "CA" + "a" * 32 + ":call"
    long = entry_id("CA" + "a" * 32, "recording:RE" + "b" * 32)
    assert len(long) == 64
    assert long.startswith("CA" + "a" * 32 + ":recording:")
    assert long == entry_id("CA" + "a" * 32, "recording:RE" + "b" * 32)
    assert long != entry_id("CA" + "a" * 32, "recording:RE" + "c" * 32)
    assert len(entry_id("CA" + "x" * 200, "call")) == 64
    assert entry_id("x", "bad\nstep") != entry_id("x", "bad step")


def test_record_writes_one_private_durable_json_line_per_event(journal):
    journal.record("call", call_sid="CA1", step="call", data={"from": "+31612345678"})
    journal.record("status", call_sid="CA1", step="status:completed", data={"n": 1})
    lines = journal.path.read_bytes().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["CA1:call", "CA1:status:completed"]
    assert json.loads(lines[0])["data"] == {"from": "+31612345678"}
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600


def test_untrusted_values_are_bounded(journal):
    entry = journal.record("call", call_sid="CA1", step="call", data={"from": "9" * 10_000})
    assert len(entry.data["from"]) == 500
    assert journal.read().entries[0].data == entry.data


def test_a_torn_last_line_is_skipped_and_the_next_entry_stays_whole(journal, caplog):
    journal.record("call", call_sid="CA1", step="call", data={"name": "one"})
    with open(journal.path, "ab") as handle:
        handle.write(b'{"v":1,"id":"CA2:call","kind":"ca')  # a crash in the middle of a write
    journal.record("call", call_sid="CA3", step="call", data={"name": "three"})
    with caplog.at_level(logging.WARNING, logger="ivr.outage.journal"):
        snapshot = journal.read()
    assert [entry.id for entry in snapshot.entries] == ["CA1:call", "CA3:call"]
    assert snapshot.skipped_lines == 1
    assert "line 2 skipped" in caplog.text


def test_garbage_lines_never_crash_reading(journal):
    journal.path.parent.mkdir(parents=True)
    journal.path.write_bytes(b'\x00\xff\n[]\n{"id": 5}\nnull\n"text"\n{}\n')
    journal.record("call", call_sid="CA1", step="call")
    snapshot = journal.read()
    assert [entry.id for entry in snapshot.entries] == ["CA1:call"]
    assert snapshot.skipped_lines == 6


def test_reading_a_missing_journal_gives_nothing(journal):
    assert journal.read().entries == []
    assert not journal.has_entries()


def _append_many(path, worker, count):
    journal = Journal(path)
    for number in range(count):
        journal.record(
            "call", call_sid=f"CA{worker}-{number}", step="call", data={"pad": "x" * 300}
        )


def test_processes_appending_at_once_never_interleave_lines(journal):
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_append_many, args=(journal.path, worker, 60)) for worker in range(4)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    snapshot = journal.read()
    assert snapshot.skipped_lines == 0
    assert len({entry.id for entry in snapshot.entries}) == 240


def test_an_append_during_archiving_lands_in_the_new_journal(journal):
    journal.record("call", call_sid="CA1", step="call")
    snapshot = journal.read()
    archived = journal.archive(snapshot)
    assert archived is not None and archived.exists()
    journal.record("call", call_sid="CA2", step="call")
    assert [entry.id for entry in journal.read().entries] == ["CA2:call"]


def test_archive_refuses_when_entries_were_added_after_reading(journal):
    journal.record("call", call_sid="CA1", step="call")
    snapshot = journal.read()
    journal.record("call", call_sid="CA2", step="call")
    assert journal.archive(snapshot) is None
    assert len(journal.read().entries) == 2


def test_replay_applies_each_entry_once_in_one_transaction_with_its_marker(
    journal, engine, session
):
    journal.record("org", call_sid="CA1", step="call", data={"name": "Alpha"})
    journal.record("org", call_sid="CA1", step="call", data={"name": "Alpha"})  # Twilio retry
    journal.record("org", call_sid="CA2", step="call", data={"name": "Beta"})
    report = replay(journal, engine, {"org": make_org})
    assert (report.applied, report.already, report.failed) == (2, 1, 0)
    assert org_names(session) == ["Alpha", "Beta"]
    assert replayed_ids(session) == ["CA1:call", "CA2:call"]
    assert report.archived is not None and report.archived.exists()
    assert not journal.path.exists()
    assert replay(journal, engine, {"org": make_org}).applied == 0


def test_an_entry_already_marked_is_never_applied_again(journal, engine, session):
    journal.record("org", call_sid="CA1", step="call", data={"name": "Alpha"})
    session.add(JournalReplay(entry_id="CA1:call", summary="replayed by another instance"))
    session.commit()
    called = []
    report = replay(journal, engine, {"org": lambda s, e: called.append(e)})
    assert called == []
    assert report.already == 1 and report.complete


def test_a_failing_handler_leaves_nothing_behind_and_is_retried(journal, engine, session, caplog):
    journal.record("org", call_sid="CA1", step="call", data={"name": "Alpha"})
    journal.record("org", call_sid="CA2", step="call", data={"name": "Beta"})

    def commit_then_fail(session, entry):
        make_org(session, entry)  # its own commit must not survive the failure below
        if entry.data["name"] == "Alpha":
            raise RuntimeError("handler bug")
        return "ok"

    report = replay(journal, engine, {"org": commit_then_fail})
    assert (report.applied, report.failed) == (1, 1)
    assert org_names(session) == ["Beta"]
    assert replayed_ids(session) == ["CA2:call"]
    assert report.archived is None and journal.path.exists()
    report = replay(journal, engine, {"org": make_org})
    assert report.applied == 1 and report.complete
    assert org_names(session) == ["Alpha", "Beta"]


def test_unknown_kinds_are_kept_for_later(journal, engine, session):
    journal.record("future-kind", call_sid="CA1", step="x")
    report = replay(journal, engine, {})
    assert report.unknown == 1 and not report.complete
    assert journal.path.exists()
    assert replayed_ids(session) == []


def test_replay_while_the_database_is_down_postpones_without_losing_anything(
    journal, settings, session
):
    journal.record("org", call_sid="CA1", step="call", data={"name": "Alpha"})
    down = replay_engine(settings.resolved_database_url, timeout_seconds=1.0)
    break_engine(down)
    try:
        report = replay(journal, down, {"org": make_org})
    finally:
        down.dispose()
    assert report.interrupted and not report.complete
    assert journal.path.exists()
    up = replay_engine(settings.resolved_database_url, timeout_seconds=1.0)
    try:
        assert replay(journal, up, {"org": make_org}).applied == 1
    finally:
        up.dispose()
    assert org_names(session) == ["Alpha"]


@pytest.mark.wall_clock
def test_concurrent_replays_apply_every_entry_exactly_once(journal, settings, session):
    for number in range(12):
        journal.record("org", call_sid=f"CA{number}", step="call", data={"name": f"org{number:02}"})
    applied = []
    lock = threading.Lock()

    def slow_org(session, entry):
        time.sleep(0.01)
        with lock:
            applied.append(entry.id)
        return make_org(session, entry)

    reports = []

    def run():
        engine = replay_engine(settings.resolved_database_url, timeout_seconds=2.0)
        try:
            for _ in range(3):
                reports.append(replay(journal, engine, {"org": slow_org}))
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(applied) == sorted(set(applied))
    assert org_names(session) == [f"org{number:02}" for number in range(12)]
    assert len(replayed_ids(session)) == 12
    assert sum(report.applied for report in reports) == 12


def test_the_marker_row_alone_stops_a_second_replayer(journal, engine, session):
    """Even without the replay locks, the JournalReplay primary key keeps replay once-only."""
    from ivr.outage.replay import ReplayReport, _replay_entries

    journal.record("org", call_sid="CA1", step="call", data={"name": "Alpha"})
    entries = journal.read().entries
    first, second = ReplayReport(), ReplayReport()
    _replay_entries(entries, engine, {"org": make_org}, first)
    _replay_entries(entries, engine, {"org": make_org}, second)
    assert (first.applied, second.applied, second.already) == (1, 0, 1)
    assert org_names(session) == ["Alpha"]


def test_entries_round_trip_through_a_line():
    entry = Entry(
        id="CA1:call",
        kind="call",
        call_sid="CA1",
        at=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
        data={"a": [1, "b"]},
    )
    assert Entry.from_line(entry.to_line()) == entry


@pytest.mark.wall_clock
def test_replayers_racing_without_any_lock_still_apply_each_entry_once(journal, settings, session):
    from ivr.outage.replay import ReplayReport, _replay_entries

    for number in range(10):
        journal.record("org", call_sid=f"CA{number}", step="call", data={"name": f"org{number:02}"})
    entries = journal.read().entries
    start = threading.Barrier(3)
    reports = [ReplayReport() for _ in range(3)]

    def slow_org(session, entry):
        time.sleep(0.02)  # widen the window in which another replayer could slip in
        return make_org(session, entry)

    def run(report):
        engine = replay_engine(settings.resolved_database_url, timeout_seconds=5.0)
        try:
            start.wait(timeout=10)
            _replay_entries(entries, engine, {"org": slow_org}, report)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run, args=(report,)) for report in reports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(report.applied for report in reports) == 10
    assert sum(report.failed for report in reports) == 0
    assert org_names(session) == [f"org{number:02}" for number in range(10)]
