"""The `[helpdesk]` settings: where helpdesk events go, signed with which secrets.

A receiver is `IVR_HELPDESK_WEBHOOK_URL` with `IVR_HELPDESK_WEBHOOK_SECRET` (named
`helpdesk`), and any number of `[[helpdesk.webhooks]]`, each with its own secret and events.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

TICKET_CREATED = "ticket.created"
TICKET_UPDATED = "ticket.updated"
CALL_ENDED = "call.ended"
INCIDENT_OPENED = "incident.opened"
INCIDENT_UPDATED = "incident.updated"
INCIDENT_RESOLVED = "incident.resolved"
# Every type a receiver can subscribe to. Adding one is a name here and an `emit` at its cause
# (tickets.helpdesk.events).
EVENT_TYPES = (
    TICKET_CREATED,
    TICKET_UPDATED,
    CALL_ENDED,
    INCIDENT_OPENED,
    INCIDENT_UPDATED,
    INCIDENT_RESOLVED,
)
# Sent only by `ivr helpdesk test`, to check a receiver by hand; never stored.
TEST = "helpdesk.test"

# The allowed types, as the settings check them: one list, in tickets.helpdesk.events.
EventType = Literal[EVENT_TYPES]
SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret
# The Standard Webhooks specification asks for secrets of 24 to 64 random bytes.
SECRET_BYTES = (24, 64)
ENV_RECEIVER = "helpdesk"
MAX_URL = 2000


def _all_events() -> list[str]:
    return list(EVENT_TYPES)


def is_private_host(host: str) -> bool:
    """Return whether a host name or address is this machine or a private network, on its face.

    Only what the name itself says (an address, `localhost`); what a name resolves to is
    checked when sending (`ivr.messaging.webhooks`).
    """
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return not address.is_global


def check_url(value: str, *, private_allowed: bool) -> str:
    """Accept an https:// URL of a public host (http:// and private hosts only when allowed)."""
    if len(value) > MAX_URL or any(char.isspace() for char in value):
        raise ValueError(f"must be a URL of at most {MAX_URL} characters, without spaces")
    parts = urlsplit(value)
    schemes = ("https", "http") if private_allowed else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(
            "must be an https:// URL with a host name"
            + ("" if private_allowed else " (http:// only with allow_private_network = true)")
        )
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise ValueError("has a port that is not a number") from exc
    if parts.fragment:
        raise ValueError("must not have a #fragment")
    if not private_allowed and is_private_host(parts.hostname):
        raise ValueError(
            "points at this machine or a private network; set allow_private_network = true "
            "if that is really meant"
        )
    return value


def split_secrets(value: SecretStr) -> list[str]:
    """Return the secrets of a receiver: the current one first, then one being retired."""
    return value.get_secret_value().replace(",", " ").split()


def check_secrets(value: SecretStr) -> SecretStr:
    """Accept one or two secrets `whsec_` + base64 of 24 to 64 bytes, separated by a space."""
    parts = split_secrets(value)
    if not 1 <= len(parts) <= 2:
        raise ValueError("must be one secret, or two (new and old) while rotating")
    for part in parts:
        try:
            key = base64.b64decode(part.removeprefix(SECRET_PREFIX), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if not part.startswith(SECRET_PREFIX) or not SECRET_BYTES[0] <= len(key) <= SECRET_BYTES[1]:
            raise ValueError(
                f"must be {SECRET_PREFIX} followed by the base64 of {SECRET_BYTES[0]} to "
                f"{SECRET_BYTES[1]} random bytes; make one with: ivr helpdesk secret"
            )
    return value


class Webhook(BaseModel):
    """One receiver of helpdesk events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
    # Send to this machine or a private network (10.x, 192.168.x, ...), and over plain http.
    allow_private_network: bool = False
    url: str
    secret: SecretStr
    events: list[EventType] = Field(default_factory=_all_events, min_length=1)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        return check_url(value, private_allowed=info.data.get("allow_private_network", False))

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        return check_secrets(value)

    @property
    def secrets(self) -> list[str]:
        """Return the secrets each event is signed with (two while rotating)."""
        return split_secrets(self.secret)

    @property
    def address(self) -> str:
        """Return the URL without user, password or query: safe to show and log."""
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


class Helpdesk(BaseModel):
    """Helpdesk events: the receivers, and how long and how hard each event is tried."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # IVR_HELPDESK_WEBHOOK_URL and IVR_HELPDESK_WEBHOOK_SECRET: a receiver named "helpdesk".
    allow_private_network: bool = False
    url: str = ""
    secret: SecretStr = Field(default=SecretStr(""), validate_default=True)
    events: list[EventType] = Field(default_factory=_all_events, min_length=1)
    webhooks: list[Webhook] = Field(default_factory=list)
    # Seconds a receiver has to answer one delivery, connecting included.
    timeout_seconds: float = Field(default=15.0, ge=1, le=60)
    # A failing event is retried, with backoff and jitter, for this long after it happened.
    retry_hours: float = Field(default=24.0, ge=0.1, le=168)
    # Retries start after this many seconds and double, up to `longest_retry_seconds`.
    first_retry_seconds: float = Field(default=10.0, ge=0.1, le=3600)
    longest_retry_seconds: float = Field(default=3600.0, ge=1, le=86400)
    # How often each server process looks for due deliveries.
    send_interval_seconds: float = Field(default=2.0, ge=0.2, le=60)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        if not value:
            return value
        return check_url(value, private_allowed=info.data.get("allow_private_network", False))

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        url = info.data.get("url")
        if not value.get_secret_value():
            if url:
                raise ValueError("is missing: set IVR_HELPDESK_WEBHOOK_SECRET with the URL")
            return value
        if "url" in info.data and not url:
            raise ValueError("is set without a URL: set IVR_HELPDESK_WEBHOOK_URL too")
        return check_secrets(value)

    @model_validator(mode="after")
    def _names_distinct(self) -> Helpdesk:
        names = [webhook.name for webhook in self.receivers]
        if len(names) != len(set(names)):
            raise ValueError(
                f"every receiver needs a name of its own ({ENV_RECEIVER!r} is the one of "
                "IVR_HELPDESK_WEBHOOK_URL)"
            )
        return self

    @property
    def receivers(self) -> list[Webhook]:
        """Return every receiver: the one from the environment first, then the listed ones."""
        if not self.url:
            return list(self.webhooks)
        single = Webhook(
            name=ENV_RECEIVER,
            url=self.url,
            secret=self.secret,
            events=self.events,
            allow_private_network=self.allow_private_network,
        )
        return [single, *self.webhooks]


def secrets_from_environment(data: dict, environ) -> None:
    """Take each listed receiver's secret from IVR_HELPDESK_WEBHOOK_SECRET_<NAME>, when set.

    The name upper-cased, `-` as `_`: the secret of receiver `zendesk` is in
    IVR_HELPDESK_WEBHOOK_SECRET_ZENDESK, so no secret need be written in the file.
    """
    hooks = data.get("helpdesk", {}).get("webhooks", [])
    for hook in hooks if isinstance(hooks, list) else []:
        name = str(hook.get("name", "")) if isinstance(hook, dict) else ""
        variable = f"IVR_HELPDESK_WEBHOOK_SECRET_{name.upper().replace('-', '_')}"
        if name and environ.get(variable):
            hook["secret"] = environ[variable]
