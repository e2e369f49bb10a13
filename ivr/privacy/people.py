"""Who a privacy request is about, and which rows hold them.

A person is a contact of the directory (found by e-mail address or by one of their numbers)
with all their numbers, or a bare caller number nobody in the directory has. Their rows:
tickets and calls linked to the contact, or unlinked and from one of their numbers; and by
number alone the call log, call-backs, wrong PINs and texts.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field

import phonenumbers
from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from core.phones import to_e164
from ivr.models import CallLog, PinFailure
from tickets.callback_queue.models import QueuedCallBack
from tickets.models import (
    CallbackRequest,
    Contact,
    ContactPhone,
    OutboxMessage,
    Ticket,
    TicketCall,
)

# Shorter names are not looked for in free text: too many words would match.
SHORTEST_NAME = 4


class PersonNotFound(Exception):
    """Nothing is held about who was asked for, or they cannot be told apart; the message says."""


@dataclass
class Person:
    """Everything that identifies one person in our data."""

    asked: str
    contact: Contact | None = None
    numbers: set[str] = field(default_factory=set)

    @property
    def email(self) -> str | None:
        """Return the contact's e-mail address, if they are one."""
        return self.contact.email if self.contact is not None else None

    @property
    def name(self) -> str | None:
        """Return the contact's name, if they are one."""
        return self.contact.name if self.contact is not None else None

    def ref(self, secret: str) -> str:
        """Return a keyed hash of who they are: the audit trail names them without naming them.

        A contact's is that of their e-mail address, however they were asked for, so an export
        by number and an erasure by e-mail address carry the same reference.
        """
        key = (self.email or self.asked).lower()
        return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()[:16]

    def words(self) -> list[str]:
        """Return the words that name this person in free text: e-mail address and name."""
        found = {self.email} if self.email else set()
        if self.name and len(self.name.strip()) >= SHORTEST_NAME:
            found.add(self.name.strip())
        return sorted(found, key=lambda text: (-len(text), text))

    def identifiers(self) -> list[str]:
        """Return the texts that name this person as written by us: e-mail, name, numbers."""
        found = set(self.words())
        for number in self.numbers:
            found.add(number)
            parsed = phonenumbers.parse(number, None)
            national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
            found.update({national, re.sub(r"\D", "", national)})
        return sorted(found, key=lambda text: (-len(text), text))


def _contact_query():
    return select(Contact).options(selectinload(Contact.phones), joinedload(Contact.organization))


def _of_contact(asked: str, contact: Contact) -> Person:
    numbers = {phone.number for phone in contact.phones}
    return Person(asked=asked, contact=contact, numbers=numbers)


def find_person(session: Session, asked: str) -> Person:
    """Return the person an e-mail address or phone number (any usual notation) stands for."""
    text = asked.strip()
    if "@" in text:
        email = text.lower()
        contact = session.scalar(_contact_query().where(func.lower(Contact.email) == email))
        if contact is None:
            raise PersonNotFound(f"no contact has the e-mail address {email}")
        return _of_contact(email, contact)
    number = to_e164(text)
    if number is None:
        raise PersonNotFound(f"{text!r} is neither an e-mail address nor a phone number")
    contacts = session.scalars(
        _contact_query().join(ContactPhone).where(ContactPhone.number == number)
    ).all()
    if len(contacts) > 1:
        raise PersonNotFound(
            f"{number} is the number of {len(contacts)} contacts; ask by e-mail address"
        )
    if contacts:
        person = _of_contact(number, contacts[0])
        person.numbers.add(number)
        return person
    return Person(asked=number, numbers={number})


# ---------------------------------------------------------------------------- their rows


def linked(person: Person, model) -> ColumnElement[bool]:
    """Return which tickets or ticket calls are theirs: linked to them, or unlinked and theirs.

    Unlinked rows are theirs when they came from one of their numbers; a call linked to
    someone else who shares the number is that other person's.
    """
    conditions = []
    if person.contact is not None:
        conditions.append(model.contact_id == person.contact.id)
    if person.numbers:
        conditions.append(and_(model.contact_id.is_(None), model.caller.in_(person.numbers)))
    return or_(*conditions) if conditions else false()


def from_numbers(person: Person) -> dict:
    """Return, per table kept by number alone, the condition that picks their rows."""
    numbers = sorted(person.numbers)
    addresses = numbers + ([person.email] if person.email else [])
    return {
        CallLog: or_(CallLog.from_number.in_(numbers), CallLog.caller_id.in_(numbers)),
        CallbackRequest: CallbackRequest.caller.in_(numbers),
        QueuedCallBack: QueuedCallBack.number.in_(numbers),
        PinFailure: PinFailure.caller_key.in_(numbers),
        OutboxMessage: OutboxMessage.recipient.in_(addresses),
    }


def holds_anything(session: Session, person: Person) -> bool:
    """Return whether any table holds a row of this person."""
    if person.contact is not None:
        return True
    checks = [linked(person, Ticket), linked(person, TicketCall), *from_numbers(person).values()]
    return any(session.scalar(select(exists().where(check))) for check in checks)
