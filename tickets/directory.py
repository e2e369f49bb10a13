"""The client directory: find contacts by phone number or PIN; PINs are keyed hashes."""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from tickets.models import Contact, ContactPhone

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


def find_contact_by_phone(session: Session, number: str | None) -> Contact | None:
    """Return the contact with this E.164 number, preferring entitled roles if shared."""
    if not number:
        return None
    contacts = session.scalars(
        select(Contact)
        .join(ContactPhone)
        .where(ContactPhone.number == number)
        .options(joinedload(Contact.organization))
        .order_by(Contact.id)
    ).all()
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
