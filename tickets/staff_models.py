"""The tables of support staff: their accounts, API tokens and failed sign-ins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.db import Base


class StaffUser(Base):
    """A support-staff account for the dashboard and API."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), default="agent")
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # E.164; an account with a phone number is an engineer the rota can ring.
    phone: Mapped[str | None] = mapped_column(String(20))
    # Raised by signing out and deactivation: every session cookie issued before stops working.
    session_epoch: Mapped[int] = mapped_column(default=0, server_default="0")
    # SHA-256 of the secret in the engineer's calendar feed URL; None when no feed is issued.
    feed_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)

    def __repr__(self) -> str:
        return f"<StaffUser {self.id} {self.email!r} {self.role}>"


class ApiToken(Base):
    """A bearer token of a staff account; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # After this moment the token no longer works; None for tokens made before expiry existed.
    expires_at: Mapped[datetime | None]

    staff: Mapped[StaffUser] = relationship()

    def __repr__(self) -> str:
        return f"<ApiToken {self.id} staff={self.staff_id}>"


class LoginFailure(Base):
    """A failed sign-in: counted per e-mail address and source, so a lock-out is no weapon."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_email_source_at", "email", "source", "at"),
        # Failures per source, whatever the address: the limit on sign-in floods.
        Index("ix_login_failures_source_at", "source", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    # The client's address (behind a trusted proxy, the one the proxy saw); an IPv6 one's /64.
    source: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<LoginFailure {self.email!r} from {self.source} {self.at:%H:%M}>"
