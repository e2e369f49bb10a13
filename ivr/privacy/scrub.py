"""Find a person's e-mail address, name and numbers in free text, in every table, and remove them.

Timelines name callers ("Sanne de Vries called again"), staff write notes, and a table added
later may hold them too: so every text column of every table is looked through, not a list
that would age. Keys are left alone (primary, foreign and unique columns, hashes), as are staff
accounts, which are not a caller's data. Numbers are found however they were typed (`numbers`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Column, ColumnElement, String, Table, func, or_, select, update
from sqlalchemy.orm import Session

from core.db import Base
from ivr.privacy.numbers import number_spans, significant_digits, without_separators
from ivr.privacy.people import Person

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


@dataclass(frozen=True)
class Mentions:
    """What names a person in free text: their e-mail address and name, and their numbers."""

    words: tuple[str, ...]
    numbers: tuple[str, ...]

    @classmethod
    def of(cls, person: Person) -> Mentions:
        """Return what names `person`."""
        return cls(words=tuple(person.words()), numbers=tuple(sorted(person.numbers)))

    def __bool__(self) -> bool:
        return bool(self.words or self.numbers)

    def may_name(self, column: Column) -> ColumnElement[bool]:
        """Return the condition a text must meet to name them (the database's rough look)."""
        words = (func.lower(column).contains(w.lower(), autoescape=True) for w in self.words)
        digits = {significant_digits(number) for number in self.numbers}
        numbers = (without_separators(column).contains(d, autoescape=True) for d in digits)
        return or_(*words, *numbers)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Return where in `text` they are named, in order, not overlapping."""
        found = [m.span() for m in pattern(self.words).finditer(text)] if self.words else []
        spans: list[tuple[int, int]] = []
        for start, end in sorted(found + number_spans(text, self.numbers)):
            if spans and start < spans[-1][1]:
                spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
            else:
                spans.append((start, end))
        return spans

    def erased(self, text: str) -> str:
        """Return `text` with every mention of them replaced."""
        for start, end in reversed(self.spans(text)):
            text = text[:start] + REPLACEMENT + text[end:]
        return text


def _changes(row, columns: list[Column], mentions: Mentions) -> dict:
    """Return the new values of the columns of `row` that name the person."""
    changes = {}
    for column in columns:
        value = row._mapping[column]
        if isinstance(value, str):
            cleaned = mentions.erased(value)
            if cleaned != value:
                length = getattr(column.type, "length", None)
                changes[column.name] = cleaned[:length] if length else cleaned
    return changes


def _mentioning(session: Session, table: Table, mentions: Mentions) -> list:
    """Return the rows of a table whose text may name the person (keys, then text columns)."""
    columns = text_columns(table)
    if not columns or not mentions:
        return []
    keys = list(table.primary_key.columns)
    condition = or_(*(mentions.may_name(column) for column in columns))
    return session.execute(select(*keys, *columns).where(condition)).all()


def find_mentions(session: Session, mentions: Mentions) -> list[tuple[str, str, str]]:
    """Return (table, column, text) for every text in the database that names the person."""
    found = []
    for table in searched_tables():
        for row in _mentioning(session, table, mentions):
            for column in text_columns(table):
                value = row._mapping[column]
                if isinstance(value, str) and mentions.spans(value):
                    found.append((table.name, column.name, value))
    return found


def scrub_table(session: Session, table: Table, mentions: Mentions) -> int:
    """Replace the mentions of the person in one table's text; return how many rows changed."""
    columns, keys = text_columns(table), list(table.primary_key.columns)
    changed = 0
    for row in _mentioning(session, table, mentions):
        changes = _changes(row, columns, mentions)
        if not changes:
            continue
        if "updated_at" in table.c:
            changes["updated_at"] = table.c.updated_at  # removing a name is not their update
        where = [key == row._mapping[key] for key in keys]
        session.execute(update(table).where(*where).values(changes))
        changed += 1
    return changed


def scrub_mentions(session: Session, mentions: Mentions) -> int:
    """Replace the mentions of the person in the text of every table; return rows changed."""
    return sum(scrub_table(session, table, mentions) for table in searched_tables())
