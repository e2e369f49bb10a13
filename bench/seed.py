"""Data for the bench: its own callers, a staff account, and a grown database made in SQL."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from core.clock import utcnow
from tickets.availability import set_hours_override
from tickets.models import Contact, ContactPhone, Organization, TicketCall
from tickets.staff import create_staff, issue_token

STAFF_EMAIL = "bench@bench.example"
# The bench's callers get numbers from their own blocks of Dutch mobile numbers.
CALLER_BLOCK = "+3162"
BURST_BLOCK = "+3163"
GROWTH_BLOCK = "+3161"


@dataclass
class BenchData:
    """What the bench seeded and needs later: caller numbers and staff credentials."""

    callers: list[str]
    burst_callers: list[str]
    staff_email: str
    staff_password: str
    api_token: str


def _add_people(
    session: Session, *, label: str, block: str, organizations: int, per_org: int
) -> list[str]:
    """Add organisations with entitled contacts, one phone each; return the phone numbers."""
    now = utcnow()
    start = session.scalar(select(func.coalesce(func.max(Organization.id), 0)))
    org_rows = [
        {"id": start + i + 1, "name": f"Bench {label} organisation {i + 1}", "created_at": now}
        for i in range(organizations)
    ]
    session.execute(insert(Organization), org_rows)
    contact_start = session.scalar(select(func.coalesce(func.max(Contact.id), 0)))
    contacts, phones, numbers = [], [], []
    for index in range(organizations * per_org):
        contact_id = contact_start + index + 1
        number = f"{block}{index:07d}"
        role = "super_user" if index % 3 else "key_user"
        contacts.append(
            {
                "id": contact_id,
                "organization_id": start + index // per_org + 1,
                "name": f"Bench {label} caller {index + 1}",
                "email": f"{label}.{index + 1}@bench.example",
                "role": role,
                "created_at": now,
                "updated_at": now,
            }
        )
        phones.append({"contact_id": contact_id, "number": number})
        numbers.append(number)
    session.execute(insert(Contact), contacts)
    session.execute(insert(ContactPhone), phones)
    _resync_sequences(session, ("organizations", "contacts"))
    session.commit()
    return numbers


def _resync_sequences(session: Session, tables: tuple[str, ...]) -> None:
    """After inserts with explicit ids, move PostgreSQL's id sequences past them."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in tables:
        session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 - fixed names
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        )


def seed_bench(
    session: Session, *, callers: int, burst_organizations: int, burst_per_org: int, password: str
) -> BenchData:
    """Add the bench's callers, force the lines open and create a staff account with a token."""
    numbers = _add_people(
        session, label="caller", block=CALLER_BLOCK, organizations=callers, per_org=1
    )
    burst = _add_people(
        session,
        label="burst",
        block=BURST_BLOCK,
        organizations=burst_organizations,
        per_org=burst_per_org,
    )
    # The bench measures the in-hours flows whatever the time of day it runs.
    set_hours_override(session, mode="open", set_by="bench")
    staff = create_staff(session, email=STAFF_EMAIL, name="Bench", password=password)
    token = issue_token(session, staff=staff)
    session.commit()  # the seeding is this unit of work: the services only write
    return BenchData(numbers, burst, STAFF_EMAIL, password, token)


def count_ticket_calls(session: Session, sids: list[str]) -> int:
    """Return how many of these call SIDs are on a ticket."""
    total = 0
    for start in range(0, len(sids), 500):
        chunk = sids[start : start + 500]
        total += session.scalar(
            select(func.count()).select_from(TicketCall).where(TicketCall.sid.in_(chunk))
        )
    return total


# The grown database, made inside PostgreSQL with generate_series: no rows cross the network.
# :o, :c, :t, ... are the id offsets (the current maximum id of each table).
GROWTH_SQL = (
    (
        "organizations",
        """
        INSERT INTO organizations (id, name, created_at)
        SELECT :o + g, 'Growth organisation ' || g, now() - (g % 2000) * interval '1 day'
        FROM generate_series(1, :organizations) AS g
        """,
    ),
    (
        "contacts",
        """
        INSERT INTO contacts (id, organization_id, name, email, role, pin_hash,
                              created_at, updated_at)
        SELECT :c + g, :o + 1 + (g % :organizations), 'Growth contact ' || g,
               'contact' || g || '@growth.example',
               (ARRAY['user','user','user','user','user','user','user',
                      'key_user','key_user','super_user'])[1 + g % 10],
               CASE WHEN g % 10 = 0 THEN md5('growth-pin-' || g) || md5('salt' || g) END,
               now() - (g % 1500) * interval '1 day', now() - (g % 700) * interval '1 day'
        FROM generate_series(1, :contacts) AS g
        """,
    ),
    (
        "contact_phones",
        """
        INSERT INTO contact_phones (id, contact_id, number)
        SELECT :p + g, :c + g, :block || lpad(g::text, 7, '0')
        FROM generate_series(1, :contacts) AS g
        UNION ALL
        SELECT :p + :contacts + g, :c + g * 5, :block || lpad((:contacts + g)::text, 7, '0')
        FROM generate_series(1, :contacts / 5) AS g
        """,
    ),
    (
        "tickets",
        """
        INSERT INTO tickets (id, priority, category, status, source, reason, description, caller,
                             contact_id, organization_id, in_hours, verified, from_journal,
                             created_at, updated_at, closed_at, rating, acknowledged_at,
                             version)
        SELECT :t + g,
               CASE WHEN g % 50 = 0 THEN 'urgent' WHEN g % 7 = 0 THEN 'high'
                    WHEN g % 11 = 0 THEN 'low' ELSE 'normal' END,
               (ARRAY['bug','question','other'])[1 + g % 3],
               CASE WHEN g > :tickets - 20000
                    THEN (ARRAY['new','in_progress','waiting_for_customer','with_product_team',
                                'planned','resolved','closed'])[1 + g % 7]
                    WHEN g % 97 = 0 THEN 'planned'
                    WHEN g % 3 = 0 THEN 'resolved' ELSE 'closed' END,
               CASE WHEN g % 50 = 0 OR g % 4 = 0 THEN 'phone'
                    WHEN g % 4 = 1 THEN 'email' ELSE 'web' END,
               CASE WHEN g % 50 = 0 THEN (ARRAY['outage','urgent_bug'])[1 + g % 2] END,
               'Growth ticket ' || g || ': de omgeving reageert traag bij het openen van dossiers',
               CASE WHEN g % 4 = 0 OR g % 50 = 0
                    THEN :block || lpad((1 + g % :contacts)::text, 7, '0') END,
               :c + 1 + (g % :contacts), :o + 1 + ((g % :contacts) % :organizations),
               g % 9 <> 0, true, false,
               now() - interval '2 hours' - (:tickets - g) * interval '90 seconds',
               now() - interval '2 hours' - (:tickets - g) * interval '80 seconds',
               CASE WHEN g <= :tickets - 20000 AND g % 3 <> 0
                    THEN now() - interval '2 hours' - (:tickets - g) * interval '85 seconds' END,
               CASE WHEN g <= :tickets - 20000 AND g % 3 <> 0 AND g % 5 = 0 THEN 1 + g % 5 END,
               CASE WHEN g % 50 = 0 AND g % 7 <> 0
                    THEN now() - interval '2 hours' - (:tickets - g) * interval '90 seconds'
                         + (30 + g % 900) * interval '1 second' END,
               1
        FROM generate_series(1, :tickets) AS g
        """,
    ),
    (
        "ticket_calls",
        """
        INSERT INTO ticket_calls (id, ticket_id, sid, line, caller, outcome, started_at,
                                  ended_at, duration, answered_by, answered_at)
        SELECT :tc + g, :t + g * 10, 'CAgrowth' || lpad(g::text, 26, '0'),
               CASE WHEN g % 5 = 0 THEN 'emergency' ELSE 'office' END,
               :block || lpad((1 + g % :contacts)::text, 7, '0'),
               (ARRAY['answered','answered','answered','voicemail','refused',
                      'abandoned_while_ringing'])[1 + g % 6],
               now() - interval '2 hours' - (:tickets - g * 10) * interval '90 seconds',
               now() - interval '2 hours' - (:tickets - g * 10) * interval '90 seconds'
                     + interval '3 minutes',
               180, CASE WHEN g % 6 < 3 THEN 'Support engineer ' || (1 + g % 4) END,
               CASE WHEN g % 6 < 3
                    THEN now() - interval '2 hours' - (:tickets - g * 10) * interval '90 seconds'
                         + (15 + g % 45) * interval '1 second' END
        FROM generate_series(1, :tickets / 10) AS g
        """,
    ),
    (
        "ticket_events",
        """
        INSERT INTO ticket_events (id, ticket_id, at, kind, detail, call_sid)
        SELECT :te + 1 + g, :t + 1 + (g / 3) * 5,
               now() - interval '2 hours' - (:tickets - (g / 3) * 5) * interval '90 seconds',
               (ARRAY['created','call_recognised','status_changed'])[1 + g % 3],
               'growth event ' || g, NULL
        FROM generate_series(0, :tickets * 3 / 5 - 1) AS g
        """,
    ),
    (
        "call_logs",
        """
        INSERT INTO call_logs (id, sid, line, from_number, caller_id, to_number, language,
                               status, started_at, ended_at, duration, choices, from_journal,
                               updated_at)
        SELECT :cl + g, 'CAgrowthlog' || lpad(g::text, 23, '0'),
               CASE WHEN g % 5 = 0 THEN 'emergency' ELSE 'office' END,
               :block || lpad((1 + g % :contacts)::text, 7, '0'),
               :block || lpad((1 + g % :contacts)::text, 7, '0'),
               '+31318584900', 'nl', 'completed',
               now() - interval '2 hours' - g * interval '2 minutes',
               now() - interval '2 hours' - g * interval '2 minutes' + interval '3 minutes',
               180,
               (ARRAY['menu:1 dial:finance:completed',
                      'menu:2 dial:sales:no-answer voicemail:sales', 'menu:3',
                      'menu:4 ext:201 dial:201:completed',
                      'menu:invalid menu:2 dial:sales:completed',
                      'lang:en menu:1 dial:finance:completed',
                      'menu:none menu:none menu:none reception dial:reception:completed'
                      ])[1 + g % 7],
               false,
               now() - interval '2 hours' - g * interval '2 minutes'
        FROM generate_series(1, :call_logs) AS g
        """,
    ),
)

OFFSET_TABLES = {
    "o": "organizations",
    "c": "contacts",
    "p": "contact_phones",
    "t": "tickets",
    "tc": "ticket_calls",
    "te": "ticket_events",
    "cl": "call_logs",
}


def grow_database(
    engine: Engine,
    *,
    tickets: int = 1_000_000,
    contacts: int = 100_000,
    organizations: int = 10_000,
    call_logs: int = 200_000,
    report=print,
) -> dict[str, float]:
    """Fill a PostgreSQL database with a long history, then vacuum it; return seconds per step."""
    if engine.dialect.name != "postgresql":
        raise ValueError("the grown database is made with PostgreSQL's generate_series")
    timings: dict[str, float] = {}
    with engine.begin() as connection:
        params = {
            "tickets": tickets,
            "contacts": contacts,
            "organizations": organizations,
            "call_logs": call_logs,
            "block": GROWTH_BLOCK,
        }
        for key, table in OFFSET_TABLES.items():
            params[key] = connection.scalar(
                text(f"SELECT coalesce(max(id), 0) FROM {table}")  # noqa: S608 - fixed names
            )
        for table, statement in GROWTH_SQL:
            started = time.perf_counter()
            connection.execute(text(statement), params)
            timings[table] = time.perf_counter() - started
            report(f"  grew {table:<15} in {timings[table]:6.1f} s")
        for table in OFFSET_TABLES.values():
            connection.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT coalesce(max(id), 1) FROM {table}))"
                )
            )
    # A database with years of history has been vacuumed and checkpointed long ago; without
    # this, autovacuum and the checkpointer would work through the new rows during the runs.
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
        try:
            connection.execute(text("CHECKPOINT"))
        except DBAPIError:
            report("  CHECKPOINT needs a superuser (or pg_checkpoint); skipped")
    timings["vacuum"] = time.perf_counter() - started
    report(f"  VACUUM ANALYZE, CHECKPOINT in {timings['vacuum']:6.1f} s")
    return timings
