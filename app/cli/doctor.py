"""`ivr doctor`: check a deployment as a whole and print a line per check; change nothing.

The settings, Twilio and paging checks live in `app.doctor_checks`; here are the database ones
(schema, rota, engineers, recent paging failures), the order they run in, and the command. The
database is opened read-only and never migrated: a schema behind is reported, not fixed.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta

import click
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.doctor_checks import (
    FAIL,
    OK,
    WARN,
    CheckResult,
    check_numbers,
    check_paging,
    check_public_url,
    check_recordings,
    check_secret_key,
    describe_span,
    open_windows,
    uncovered,
)
from core.settings import ConfigError, Settings, load_settings

WEEK = timedelta(days=7)
MIGRATE = "restart the service: `ivr serve` brings the schema up to date as it starts"


# ------------------------------------------------------------------------------ database


def open_read_only(settings: Settings) -> tuple[Engine | None, CheckResult]:
    """Open the database read-only and check its schema against this version's migrations."""
    from core.db import make_read_only_engine

    url = settings.resolved_database_url
    where = make_url(url).render_as_string(hide_password=True)
    subject = "database"
    try:
        engine = make_read_only_engine(url)
    except FileNotFoundError:
        return None, CheckResult(FAIL, subject, f"no database at {where}", MIGRATE)
    try:
        result = check_schema(engine, url)
    except SQLAlchemyError as exc:
        engine.dispose()
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
        fix = "check IVR_DATABASE_URL and that the database server runs"
        return None, CheckResult(FAIL, subject, f"{where} not reachable: {reason}", fix)
    return engine, result


def check_schema(engine: Engine, url: str) -> CheckResult:
    """Check that the database is at the latest migration this version knows."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from app.schema import alembic_config

    script = ScriptDirectory.from_config(alembic_config(url))
    latest = set(script.get_heads())
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    known = {revision.revision for revision in script.walk_revisions()}
    subject = "database"
    if current == latest:
        return CheckResult(OK, subject, f"at the latest migration ({', '.join(sorted(latest))})")
    if not current:
        return CheckResult(FAIL, subject, "has no schema yet", MIGRATE)
    if current - known:
        return CheckResult(
            FAIL,
            subject,
            f"at migration {', '.join(sorted(current))}, which this version does not know: "
            "a newer version migrated it",
            "run the newer version of the service, or restore a backup from before it",
        )
    return CheckResult(
        FAIL,
        subject,
        f"behind: at migration {', '.join(sorted(current))}, this version needs "
        f"{', '.join(sorted(latest))}",
        MIGRATE,
    )


def recent_paging_failures(settings: Settings, session: Session, now: datetime) -> dict[str, str]:
    """Return the channels whose every recent attempt failed, with the latest error.

    The rule is paging's own (`tickets.paging_state`), the one `/health` and the dashboard use.
    """
    from ivr.messaging.policy import paging_policy
    from tickets.paging_state import paging_state

    return paging_state(session, paging_policy(settings), now).failing


def check_rota(settings: Settings, session: Session, now: datetime) -> CheckResult:
    """Warn when nobody on the rota covers some of the line's hours in the coming week."""
    from tickets.rota import effective_rota, shifts_between

    end = now + WEEK
    rota = effective_rota(shifts_between(session, now, end), now, end)
    covered = [(s.starts_at, s.ends_at) for segments in rota.values() for s in segments]
    gaps = uncovered(open_windows(settings, now, end), covered)
    subject = "rota"
    if not gaps:
        return CheckResult(OK, subject, "someone is on call whenever the line rings in a week")
    names = ", ".join(engineer.name for engineer in settings.emergency.engineers)
    fix = "`ivr oncall import FILE.ics --level 1`, or an override on the dashboard's On call page"
    if not covered:
        return CheckResult(
            WARN,
            subject,
            f"nobody is on the rota in the coming week: the configured engineers ({names}) "
            "are rung for every call",
            fix,
        )
    hours = sum((finish - start for start, finish in gaps), timedelta()) / timedelta(hours=1)
    shown = ", ".join(describe_span(start, finish, settings.zone) for start, finish in gaps[:3])
    more = f" and {len(gaps) - 3} more" if len(gaps) > 3 else ""
    return CheckResult(
        WARN,
        subject,
        f"nobody on call {shown}{more} ({hours:.0f} h in the coming week); "
        f"the configured engineers ({names}) are rung then",
        fix,
    )


def check_engineers(session: Session, now: datetime, zone) -> list[CheckResult]:
    """Warn about each engineer on the rota of the coming week whom the rota cannot ring."""
    from tickets.rota import shifts_between

    first_shift = {}
    for shift in shifts_between(session, now, now + WEEK):
        first_shift.setdefault(shift.staff_id, shift)
    results = []
    for shift in first_shift.values():
        staff = shift.staff
        when = f"level {shift.level} from {shift.starts_at.astimezone(zone):%a %d %b %H:%M}"
        if not staff.active:
            problem, fix = "is deactivated", "take them off the rota (import the level again)"
        elif not staff.phone:
            problem, fix = "has no phone number", f"`ivr staff phone {staff.email} NUMBER`"
        else:
            continue
        results.append(
            CheckResult(
                WARN,
                f"engineer {staff.name} <{staff.email}>",
                f"on the rota ({when}) but {problem}: the rota skips them",
                fix,
            )
        )
    if results:
        return results
    return [CheckResult(OK, "engineers", "everyone on the rota this week can be rung")]


# ------------------------------------------------------------------------------ all of it


def database_checks(settings: Settings, engine: Engine | None, now: datetime):
    """Return the recent paging failures and the rota's results (none without a database)."""
    if engine is None:
        skipped = CheckResult(WARN, "rota", "not checked: the database is not ready (see above)")
        return {}, [skipped]
    with Session(engine) as session:
        try:
            failures = recent_paging_failures(settings, session, now)
            results = [check_rota(settings, session, now)]
            results += check_engineers(session, now, settings.zone)
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
            return {}, [CheckResult(FAIL, "database", f"reading the rota failed: {reason}")]
        finally:
            session.rollback()
    return failures, results


def run_checks(settings: Settings, now: datetime) -> list[CheckResult]:
    """Run every check, in the order an operator reads them; change nothing."""
    results = [
        CheckResult(OK, "configuration", "valid"),
        check_public_url(settings),
        check_secret_key(settings),
    ]
    engine, database = open_read_only(settings)
    if engine is not None and database.status != OK:
        engine.dispose()  # a schema behind or ahead: its tables cannot be trusted to read
        engine = None
    results.append(database)
    try:
        failures, rota = database_checks(settings, engine, now)
    finally:
        if engine is not None:
            engine.dispose()
    results += check_numbers(settings)
    results.append(check_paging(settings, failures))
    results += rota
    results.append(check_recordings(settings))
    return results


@click.command()
def doctor() -> None:
    """Check this deployment: a line per check (OK, WARN or FAIL); exit status 1 on a FAIL.

    Checks the configuration, public URL and secret key, the database (read-only: it is never
    migrated here), every number at Twilio, paging, the rota of the coming week and recordings.
    Changes nothing.
    """
    from app.cli import installed_version
    from core.clock import utcnow

    click.echo(f"ivr doctor {installed_version()}")
    try:
        settings = load_settings()
    except ConfigError as exc:
        fix = "correct it: `ivr serve` refuses to start with it too"
        refused = CheckResult(FAIL, "configuration", str(exc), fix)
        click.echo(refused.line())
        sys.exit(1)
    results = run_checks(settings, utcnow())
    for result in results:
        click.echo(result.line())
    counts = {status: sum(r.status == status for r in results) for status in (FAIL, WARN, OK)}
    warnings = "warning" if counts[WARN] == 1 else "warnings"
    click.echo(f"{counts[FAIL]} failed, {counts[WARN]} {warnings}, {counts[OK]} OK")
    if counts[FAIL]:
        sys.exit(1)
