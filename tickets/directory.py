"""The client directory: import it from CSV, find contacts by phone number or PIN."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from core.db import savepoint
from core.phones import to_e164
from tickets.models import ROLES, Contact, ContactPhone, Organization

PIN_MIN_DIGITS = 6
PIN_MAX_DIGITS = 8


def hash_pin(pin: str, *, secret: str) -> str:
    """Return the keyed hash stored for a PIN: HMAC-SHA256 with the server's secret key."""
    return hmac.new(secret.encode(), f"pin:{pin}".encode(), hashlib.sha256).hexdigest()


def is_well_formed_pin(pin: str | None) -> bool:
    """Return whether `pin` is 6 to 8 ASCII digits."""
    return (
        pin is not None
        and pin.isascii()
        and pin.isdigit()
        and PIN_MIN_DIGITS <= len(pin) <= PIN_MAX_DIGITS
    )


# Built once: every emergency call looks its caller up.
_CONTACTS_BY_PHONE = (
    select(Contact)
    .join(ContactPhone)
    .where(ContactPhone.number == bindparam("number"))
    .options(joinedload(Contact.organization))
    .order_by(Contact.id)
)


def find_contact_by_phone(session: Session, number: str | None) -> Contact | None:
    """Return the contact with this E.164 number, preferring entitled roles if shared."""
    if not number:
        return None
    contacts = session.scalars(_CONTACTS_BY_PHONE, {"number": number}).all()
    if not contacts:
        return None
    entitled = [contact for contact in contacts if contact.is_entitled]
    return (entitled or contacts)[0]


def find_contact_by_pin(session: Session, pin: str | None, *, secret: str) -> Contact | None:
    """Return the contact whose PIN this is, found by its indexed hash."""
    if not is_well_formed_pin(pin):
        return None
    return session.scalar(
        select(Contact)
        .where(Contact.pin_hash == hash_pin(pin, secret=secret))
        .options(joinedload(Contact.organization))
    )


# --- importing the directory from CSV -------------------------------------------------------

DEFAULT_REGION = "NL"
COLUMNS = ("organization", "name", "email", "role", "phone", "pin")
REQUIRED_VALUES = ("organization", "name", "email", "role")
HEADER_ALIASES = {"organisation": "organization", "e-mail": "email"}
DELIMITERS = (",", ";", "\t")
# Several numbers share one cell; a comma is never part of a phone number either.
PHONE_SEPARATORS = re.compile(r"[;,]")
EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_NAME_LENGTH = 200
MAX_EMAIL_LENGTH = 320
# Bounds the IN (...) lists of the look-ups made before the rows are applied.
LOOKUP_CHUNK = 500


class DirectoryFileError(ValueError):
    """The directory file as a whole cannot be imported: unreadable text or a bad header."""


@dataclass(frozen=True)
class RejectedRow:
    """A row of the file that changed nothing, and why."""

    line: int
    email: str
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        """Return every reason in one line."""
        return "; ".join(self.reasons)


@dataclass
class DirectoryImport:
    """What an import did: rows added, updated, unchanged and rejected."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Return how many contact rows the file had."""
        return self.added + self.updated + self.unchanged + len(self.rejected)


@dataclass(frozen=True)
class _Entry:
    """A validated row: what one contact should look like after the import."""

    organization: str
    name: str
    email: str
    role: str
    phones: tuple[str, ...]
    pin_hash: str | None


def decode_directory_file(data: bytes) -> str:
    """Return the text of a directory file: UTF-8 (BOM or not), else Windows-1252 from Excel."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise DirectoryFileError("the file is neither UTF-8 nor Windows-1252 text") from exc


@dataclass
class _Known:
    """What the database holds for the rows of a file, kept current as rows are applied."""

    contacts: dict[str, Contact]
    pin_owners: dict[str, str]
    organizations: dict[str, Organization] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, parsed: list[tuple[int, dict[str, str]]], *, secret: str):
        """Look up, in a few queries, the contacts, PIN owners and organisations rows refer to."""
        emails = {values["email"].lower() for _line, values in parsed if values["email"]}
        pin_hashes = {
            hash_pin(values["pin"], secret=secret)
            for _line, values in parsed
            if is_well_formed_pin(values["pin"])
        }
        known = cls(_contacts_by_email(session, emails), _pin_owners(session, pin_hashes))
        for organization in session.scalars(select(Organization).order_by(Organization.id)):
            known.organizations.setdefault(_organization_key(organization.name), organization)
        return known


@dataclass
class _SeenInFile:
    """The line each e-mail address and PIN was first used on in the file."""

    email_lines: dict[str, int] = field(default_factory=dict)
    pin_lines: dict[str, int] = field(default_factory=dict)

    def clashes(
        self, line: int, values: dict[str, str], known: _Known, *, secret: str
    ) -> list[str]:
        """Return why a row's e-mail address or PIN clashes with an earlier row or a contact."""
        reasons = []
        email = values["email"].lower()
        if email:
            if email in self.email_lines:
                reasons.append(f"duplicate e-mail address (also on line {self.email_lines[email]})")
            else:
                self.email_lines[email] = line
        if is_well_formed_pin(values["pin"]):
            digest = hash_pin(values["pin"], secret=secret)
            if digest in self.pin_lines:
                reasons.append(f"PIN already used on line {self.pin_lines[digest]} of this file")
            else:
                self.pin_lines[digest] = line
                owner = known.pin_owners.get(digest)
                if owner is not None and owner != email:
                    reasons.append("PIN already taken by another contact")
        return reasons


def import_directory(
    session: Session, text: str, *, secret: str, region: str = DEFAULT_REGION
) -> DirectoryImport:
    """Add or update contacts from CSV text, keyed on e-mail; a rejected row changes nothing."""
    columns, width, records = _read_records(text)
    parsed = [(line, _row_values(cells, columns, width)) for line, cells in records]
    known = _Known.load(session, parsed, secret=secret)
    seen = _SeenInFile()
    result = DirectoryImport()
    for line, values in parsed:
        entry, reasons = _validate(values, secret=secret, region=region)
        reasons += seen.clashes(line, values, known, secret=secret)
        if reasons or entry is None:
            result.rejected.append(RejectedRow(line, values["email"], tuple(reasons)))
            continue
        outcome = _apply_entry(session, entry, known)
        if outcome == "added":
            result.added += 1
        elif outcome == "updated":
            result.updated += 1
        elif outcome == "unchanged":
            result.unchanged += 1
        else:
            reason = "conflicts with a change made at the same time; import the file again"
            result.rejected.append(RejectedRow(line, values["email"], (reason,)))
    session.flush()
    return result


def _apply_entry(session: Session, entry: _Entry, known: _Known) -> str | None:
    """Add or update the entry's contact; return added, updated, unchanged, or None on a clash."""
    contact = known.contacts.get(entry.email)
    organization = known.organizations.get(_organization_key(entry.organization))
    if contact is not None and not _differs(contact, entry, organization):
        return "unchanged"
    try:
        # A savepoint per row: a conflict nobody could see while validating (a concurrent
        # import) rejects that row alone and keeps the rows already applied.
        with savepoint(session):
            if organization is None:
                organization = Organization(name=entry.organization)
                session.add(organization)
            if contact is None:
                contact = _add_contact(session, entry, organization)
                outcome = "added"
            else:
                _update_contact(contact, entry, organization)
                outcome = "updated"
    except IntegrityError:
        return None
    known.organizations[_organization_key(organization.name)] = organization
    known.contacts[entry.email] = contact
    if entry.pin_hash is not None:
        known.pin_owners[entry.pin_hash] = entry.email
    return outcome


def _header_key(name: str) -> str:
    key = "_".join(name.strip().lower().split())
    return HEADER_ALIASES.get(key, key)


def _read_records(text: str) -> tuple[dict[str, int], int, list[tuple[int, list[str]]]]:
    """Return the header's column positions and width, and each non-blank record's line."""
    text = text.removeprefix("\ufeff")
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise DirectoryFileError("the file is empty; expected a header " + ",".join(COLUMNS))
    delimiter = max(DELIMITERS, key=lambda d: len(set(COLUMNS) & _header_keys(first, d)))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    columns: dict[str, int] | None = None
    width = 0
    records: list[tuple[int, list[str]]] = []
    try:
        while True:
            line = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                break
            if not any(cell.strip() for cell in cells):
                continue
            if columns is None:
                columns = _header_columns(cells)
                width = len(cells)
            else:
                records.append((line, cells))
    except csv.Error as exc:
        raise DirectoryFileError(f"line {reader.line_num}: not readable as CSV ({exc})") from exc
    if columns is None:
        raise DirectoryFileError("the file has no header; expected " + ",".join(COLUMNS))
    return columns, width, records


def _header_keys(line: str, delimiter: str) -> set[str]:
    try:
        cells = next(csv.reader([line], delimiter=delimiter))
    except (csv.Error, StopIteration):
        return set()
    return {_header_key(cell) for cell in cells}


def _header_columns(cells: list[str]) -> dict[str, int]:
    """Return where each known column is, or fail naming what the header lacks."""
    columns: dict[str, int] = {}
    for index, cell in enumerate(cells):
        key = _header_key(cell)
        if key in COLUMNS:
            if key in columns:
                raise DirectoryFileError(f"the header has the column {key!r} twice")
            columns[key] = index
    missing = [column for column in COLUMNS if column not in columns]
    if missing:
        raise DirectoryFileError(
            f"the header lacks the column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}; expected {','.join(COLUMNS)}"
        )
    return columns


def _row_values(cells: list[str], columns: dict[str, int], width: int) -> dict[str, str]:
    """Return a record's stripped value per column; `extra` is set if it overflows the header."""
    values = {
        column: (cells[index].strip() if index < len(cells) else "")
        for column, index in columns.items()
    }
    values["extra"] = "yes" if any(cell.strip() for cell in cells[width:]) else ""
    return values


def _collapse(value: str) -> str:
    return " ".join(value.split())


def _organization_key(name: str) -> str:
    return _collapse(name).casefold()


def _validate(
    values: dict[str, str], *, secret: str, region: str
) -> tuple[_Entry | None, list[str]]:
    """Check one row on its own; return the contact it describes or the reasons it cannot."""
    reasons = [f"missing value for {column}" for column in REQUIRED_VALUES if not values[column]]
    if values["extra"]:
        reasons.append("more values than the header has columns")
    organization = _collapse(values["organization"])
    name = _collapse(values["name"])
    for column, value in (("organization", organization), ("name", name)):
        if len(value) > MAX_NAME_LENGTH:
            reasons.append(f"{column} longer than {MAX_NAME_LENGTH} characters")
    email = values["email"].lower()
    if email and (len(email) > MAX_EMAIL_LENGTH or not EMAIL_SHAPE.fullmatch(email)):
        reasons.append(f"not an e-mail address: {values['email']!r}")
    role = "_".join(values["role"].lower().replace("-", " ").split())
    if values["role"] and role not in ROLES:
        reasons.append(f"unknown role {values['role']!r} (use {', '.join(ROLES)})")
    phones: list[str] = []
    for raw in PHONE_SEPARATORS.split(values["phone"]):
        raw = raw.strip()
        if not raw:
            continue
        number = to_e164(raw, region=region)
        if number is None:
            reasons.append(f"bad phone number {raw[:40]!r}")
        elif number not in phones:
            phones.append(number)
    pin = values["pin"]
    pin_hash = None
    if pin:
        # The PIN itself is never echoed: the output of an import may end up in logs.
        if not (pin.isascii() and pin.isdigit()):
            reasons.append("PIN must be digits only")
        elif len(pin) < PIN_MIN_DIGITS:
            reasons.append(
                f"PIN too short ({len(pin)} digits; {PIN_MIN_DIGITS} to {PIN_MAX_DIGITS} needed)"
            )
        elif len(pin) > PIN_MAX_DIGITS:
            reasons.append(
                f"PIN too long ({len(pin)} digits; {PIN_MIN_DIGITS} to {PIN_MAX_DIGITS} needed)"
            )
        else:
            pin_hash = hash_pin(pin, secret=secret)
    if reasons:
        return None, reasons
    entry = _Entry(organization, name, email, role, tuple(phones), pin_hash)
    return entry, reasons


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    values = sorted(values)
    for start in range(0, len(values), LOOKUP_CHUNK):
        yield values[start : start + LOOKUP_CHUNK]


def _contacts_by_email(session: Session, emails: set[str]) -> dict[str, Contact]:
    """Return the existing contacts with these e-mail addresses, keyed on the lower-case one."""
    found: dict[str, Contact] = {}
    for chunk in _chunks(emails):
        for contact in session.scalars(
            select(Contact)
            .where(func.lower(Contact.email).in_(chunk))
            .options(selectinload(Contact.phones))
        ):
            found[contact.email.lower()] = contact
    return found


def _pin_owners(session: Session, pin_hashes: set[str]) -> dict[str, str]:
    """Return the lower-case e-mail address of the contact holding each of these PIN hashes."""
    owners: dict[str, str] = {}
    for chunk in _chunks(pin_hashes):
        for pin_hash, email in session.execute(
            select(Contact.pin_hash, Contact.email).where(Contact.pin_hash.in_(chunk))
        ):
            owners[pin_hash] = email.lower()
    return owners


def _differs(contact: Contact, entry: _Entry, organization: Organization | None) -> bool:
    """Return whether applying `entry` would change `contact`."""
    return (
        organization is None
        or contact.organization_id != organization.id
        or contact.name != entry.name
        or contact.email != entry.email
        or contact.role != entry.role
        or (entry.pin_hash is not None and contact.pin_hash != entry.pin_hash)
        or {phone.number for phone in contact.phones} != set(entry.phones)
    )


def _add_contact(session: Session, entry: _Entry, organization: Organization) -> Contact:
    contact = Contact(
        organization=organization,
        name=entry.name,
        email=entry.email,
        role=entry.role,
        pin_hash=entry.pin_hash,
        phones=[ContactPhone(number=number) for number in entry.phones],
    )
    session.add(contact)
    return contact


def _update_contact(contact: Contact, entry: _Entry, organization: Organization) -> None:
    """Make `contact` what `entry` says; an entry without a PIN keeps the contact's PIN."""
    contact.organization = organization
    contact.name = entry.name
    contact.email = entry.email
    contact.role = entry.role
    if entry.pin_hash is not None:
        contact.pin_hash = entry.pin_hash
    # Keep the rows of numbers that stay, so the (contact, number) unique key never clashes.
    for phone in list(contact.phones):
        if phone.number not in entry.phones:
            contact.phones.remove(phone)
    kept = {phone.number for phone in contact.phones}
    contact.phones.extend(ContactPhone(number=n) for n in entry.phones if n not in kept)
