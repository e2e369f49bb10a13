"""Find a person's e-mail address, name and numbers in free text, in every table, and remove them.

Timelines name callers ("Sanne de Vries called again"), staff write notes, and a table added
later may hold them too: so every text column of every table is looked through, not a list
that would age. Keys are left alone (primary, foreign and unique columns, hashes), as are staff
accounts, which are not a caller's data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import Column, String, Table, func, or_, select, update
from sqlalchemy.orm import Session

from core.db import Base

REPLACEMENT = "[erased]"
STAFF_TABLES = {"staff_users", "api_tokens"}


def text_columns(table: Table) -> list[Column]:
    """Return the columns of a table that may hold free text about someone."""
    return [
        column
        for column in table.columns
        if isinstance(column.type, String)
        and not (column.primary_key or column.foreign_keys or column.unique)
        and not column.name.endswith("_hash")
    ]


def searched_tables() -> list[Table]:
    """Return every table whose text is looked through."""
    return [table for table in Base.metadata.sorted_tables if table.name not in STAFF_TABLES]


def pattern(identifiers: Iterable[str]) -> re.Pattern:
    """Return the regular expression that finds any of the identifiers as a whole word."""
    alternatives = "|".join(re.escape(text) for text in sorted(identifiers, key=len, reverse=True))
    return re.compile(rf"(?<![0-9A-Za-z])(?:{alternatives})(?![0-9A-Za-z])", re.IGNORECASE)


def _changes(row, columns: list[Column], finder: re.Pattern) -> dict:
    """Return the new values of the columns of `row` that name the person."""
    changes = {}
    for column in columns:
        value = row._mapping[column]
        if isinstance(value, str):
            cleaned = finder.sub(REPLACEMENT, value)
            if cleaned != value:
                length = getattr(column.type, "length", None)
                changes[column.name] = cleaned[:length] if length else cleaned
    return changes


def _mentioning(session: Session, table: Table, identifiers: list[str]) -> list:
    """Return the rows of a table whose text may name the person (keys, then text columns)."""
    columns = text_columns(table)
    if not columns or not identifiers:
        return []
    mentions = or_(
        *(
            func.lower(column).contains(text.lower(), autoescape=True)
            for column in columns
            for text in identifiers
        )
    )
    keys = list(table.primary_key.columns)
    return session.execute(select(*keys, *columns).where(mentions)).all()


def find_mentions(session: Session, identifiers: list[str]) -> list[tuple[str, str, str]]:
    """Return (table, column, text) for every text in the database that names the person."""
    finder = pattern(identifiers) if identifiers else None
    found = []
    for table in searched_tables():
        for row in _mentioning(session, table, identifiers):
            for column in text_columns(table):
                value = row._mapping[column]
                if isinstance(value, str) and finder.search(value):
                    found.append((table.name, column.name, value))
    return found


def scrub_table(session: Session, table: Table, identifiers: list[str]) -> int:
    """Replace the identifiers in one table's text; return how many rows changed."""
    rows = _mentioning(session, table, identifiers)
    if not rows:
        return 0
    columns, keys = text_columns(table), list(table.primary_key.columns)
    finder = pattern(identifiers)
    changed = 0
    for row in rows:
        changes = _changes(row, columns, finder)
        if not changes:
            continue
        if "updated_at" in table.c:
            changes["updated_at"] = table.c.updated_at  # removing a name is not their update
        where = [key == row._mapping[key] for key in keys]
        session.execute(update(table).where(*where).values(changes))
        changed += 1
    return changed


def scrub_identifiers(session: Session, identifiers: list[str]) -> int:
    """Replace the identifiers in the text of every table; return how many rows changed."""
    return sum(scrub_table(session, table, identifiers) for table in searched_tables())
