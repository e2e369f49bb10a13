"""Load and validate the service's settings from TOML plus environment overrides."""

from __future__ import annotations

import ipaddress
import os
import re
import string
import tomllib
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from core.helpdesk_settings import Helpdesk, secrets_from_environment
from core.settings_types import (
    Country,
    PhoneNumber,
    Schedule,
    Strict,
    international_number,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# config/default.toml and config/demo-directory.csv, as package data: in a checkout these are
# links to config/, and an installed package (a plain `pip install`) holds copies.
DEFAULTS = Path(__file__).resolve().parent / "defaults"
DEFAULT_CONFIG = DEFAULTS / "default.toml"

# Environment variable -> dotted settings key it overrides.
ENV_OVERRIDES = {
    "IVR_DATABASE_URL": "database_url",
    "TWILIO_AUTH_TOKEN": "twilio_auth_token",
    "TWILIO_ACCOUNT_SID": "twilio_account_sid",
    "IVR_PUBLIC_URL": "public_url",
    "IVR_SECRET_KEY": "secret_key",
    "IVR_WORKERS": "server.workers",
    "IVR_JOURNAL_PATH": "journal_path",
    "TWILIO_API_URL": "twilio_api_url",
    "IVR_SMS_FROM": "paging.sms_from",
    "IVR_SMTP_URL": "paging.smtp_url",
    "IVR_METRICS_TOKEN": "metrics.token",
    "IVR_HELPDESK_WEBHOOK_URL": "helpdesk.url",
    "IVR_HELPDESK_WEBHOOK_SECRET": "helpdesk.secret",
}

# A secret key is at least this long and uses this many different characters, which refuses a
# word, a repeated word or a short phrase; a hex key from `secrets.token_hex(32)` has 64 and 16.
MIN_SECRET_LENGTH = 32
MIN_SECRET_SYMBOLS = 12


class ConfigError(Exception):
    """A setting is missing or wrong; the message is one line naming the key."""


class Voice(Strict):
    """How `<Say>` speaks one language."""

    language: str
    voice: str


class Department(Strict):
    """A team reached from the office menu."""

    key: Literal["1", "2", "3", "4", "5", "6", "7", "8"]
    names: dict[str, str]
    numbers: list[PhoneNumber] = Field(min_length=1, max_length=10)
    dial_timeout: int = Field(default=20, ge=5, le=120)
    schedule: Schedule | None = None


class Colleague(Strict):
    """A colleague a caller may reach by extension (option 4)."""

    extension: Annotated[str, Field(pattern=r"^[0-9]{2,6}$")]
    name: str
    number: PhoneNumber


class OfficeLine(Strict):
    """The office number and its four-option menu."""

    numbers: list[PhoneNumber] = Field(min_length=1)
    reception: list[PhoneNumber] = Field(min_length=1, max_length=10)
    reception_dial_timeout: int = Field(default=30, ge=5, le=120)
    menu_timeout: int = Field(default=6, ge=1, le=30)
    max_misses: int = Field(default=2, ge=1, le=10)
    english_key: Literal["5", "6", "7", "8", "9", "0"] = "9"
    emergency_key: Literal["1", "2", "3", "4", "5", "6", "7", "8"] = "3"
    colleague_key: Literal["1", "2", "3", "4", "5", "6", "7", "8"] = "4"
    extension_timeout: int = Field(default=8, ge=2, le=30)
    extension_max_tries: int = Field(default=3, ge=1, le=10)
    colleague_dial_timeout: int = Field(default=20, ge=5, le=120)
    voicemail_max_seconds: int = Field(default=120, ge=10, le=600)
    departments: dict[str, Department]
    colleagues: list[Colleague] = Field(default_factory=list)
    schedule: Schedule | None = None

    @model_validator(mode="after")
    def _keys_are_distinct(self) -> OfficeLine:
        keys = [d.key for d in self.departments.values()]
        keys += [self.emergency_key, self.colleague_key, self.english_key]
        if len(keys) != len(set(keys)):
            raise ValueError("menu keys of departments, emergency, colleague and English overlap")
        extensions = [c.extension for c in self.colleagues]
        if len(extensions) != len(set(extensions)):
            raise ValueError("colleague extensions must be unique")
        for name in self.departments:
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,30}", name) or name == "reception":
                raise ValueError(
                    f"departments.{name}: name must be lower-case letters, digits or _ "
                    "(and not 'reception')"
                )
        return self

    def menu_keys(self) -> dict[str, str]:
        """Return the `{..._key}` placeholders the office menu prompt may use."""
        keys = {f"{name}_key": d.key for name, d in self.departments.items()}
        keys.update(
            english_key=self.english_key,
            emergency_key=self.emergency_key,
            colleague_key=self.colleague_key,
        )
        return keys


class Engineer(Strict):
    """A support engineer on the emergency rota."""

    name: str
    number: PhoneNumber


class Transcription(Strict):
    """Transcripts of emergency voicemails, by Twilio's real-time transcription (<Transcription>).

    The legacy `<Record transcribe>` only knows English; this one transcribes in the call's
    language. Pages about a voicemail wait at most `wait_seconds` for its transcript.
    """

    enabled: bool = True
    engine: Literal["google", "deepgram"] = "google"
    # The call's prompt language -> the transcription's BCP-47 language code.
    languages: dict[str, str] = Field(default_factory=lambda: {"nl": "nl-NL", "en": "en-US"})
    wait_seconds: int = Field(default=30, ge=0, le=300)


class EmergencyLine(Strict):
    """The emergency line for key users and super users."""

    numbers: list[PhoneNumber] = Field(min_length=1)
    engineers: list[Engineer] = Field(min_length=1, max_length=10)
    ring_strategy: Literal["simultaneous", "sequential"] = "simultaneous"
    dial_timeout: int = Field(default=25, ge=5, le=120)
    screen_timeout: int = Field(default=8, ge=3, le=30)
    pin_max_tries: int = Field(default=3, ge=1, le=10)
    pin_timeout: int = Field(default=10, ge=3, le=30)
    pin_lockout_failures: int = Field(default=5, ge=2, le=100)
    pin_lockout_minutes: int = Field(default=15, ge=1, le=1440)
    # This many wrong PINs from all numbers together within `pin_guard_minutes` pause PIN checks
    # line-wide for `pin_pause_minutes`: spoofing many numbers buys no more guesses.
    pin_guard_failures: int = Field(default=20, ge=3, le=1000)
    pin_guard_minutes: int = Field(default=15, ge=1, le=1440)
    pin_pause_minutes: int = Field(default=240, ge=1, le=10080)
    triage_timeout: int = Field(default=6, ge=2, le=30)
    triage_max_misses: int = Field(default=2, ge=1, le=5)
    repeat_window_minutes: int = Field(default=30, ge=0, le=1440)
    voicemail_max_seconds: int = Field(default=180, ge=10, le=600)
    record_calls: bool = True
    # A caller who goes on without a confirmed PIN: "ring" puts them through to the engineers
    # (who hear that the caller is not verified), "voicemail" takes a voicemail instead.
    unverified: Literal["ring", "voicemail"] = "ring"
    # An engineer who accepted a call is busy (not rung for another) until its end is in; a
    # call accepted longer ago than this without an end counts as ended (a lost callback).
    busy_stale_minutes: int = Field(default=180, ge=10, le=1440)
    # A caller recognised on the call may ask to be called back: on the number they called
    # from when it is in the directory, or a fixed or mobile number of one of these countries.
    call_back_countries: list[Country] = Field(default_factory=lambda: ["NL", "BE"], min_length=1)
    schedule: Schedule | None = None
    transcription: Transcription = Field(default_factory=Transcription)

    @model_validator(mode="after")
    def _line_limit_above_a_number(self) -> EmergencyLine:
        if self.pin_guard_failures <= self.pin_lockout_failures:
            raise ValueError(
                "pin_guard_failures must be more than pin_lockout_failures, "
                "else one number's wrong PINs pause PIN checks for every caller"
            )
        return self


class OnCall(Strict):
    """The on-call rota: how long each escalation level rings, and how often the round repeats."""

    # Seconds each level rings before the next is tried; the last value holds for higher levels.
    level_ring_seconds: list[Annotated[int, Field(ge=5, le=120)]] = Field(
        default_factory=lambda: [20, 20, 25], min_length=1, max_length=10
    )
    rounds: int = Field(default=2, ge=1, le=5)
    # How far ahead an iCalendar import expands recurring shifts; re-import before it runs out.
    import_horizon_days: int = Field(default=400, ge=7, le=1500)

    def ring_seconds(self, level: int) -> int:
        """Return how long `level` (1 = primary) rings."""
        return self.level_ring_seconds[min(level, len(self.level_ring_seconds)) - 1]


def _smtp_url(value: str) -> str:
    """Accept an empty value or smtp://[user:password@]host[:port] (smtps:// for TLS)."""
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("must look like smtp://[user:password@]host:port (or smtps://)")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise ValueError("has a port that is not a number") from exc
    return value


class Paging(Strict):
    """Paging the on-call engineers about urgent tickets nobody took, and texting the caller."""

    enabled: bool = True
    # Minutes a level has to acknowledge before the next level is paged.
    ack_timeout: int = Field(default=5, ge=1, le=120)
    rounds: int = Field(default=2, ge=1, le=5)
    # Page outside the emergency line's working hours too; otherwise one summary at opening.
    out_of_hours: bool = False
    channels: list[Literal["sms", "email"]] = Field(default_factory=lambda: ["sms", "email"])
    # The number SMS messages are sent from (E.164, SMS-capable); IVR_SMS_FROM overrides it.
    sms_from: Annotated[str, AfterValidator(lambda v: v and international_number(v))] = ""
    # The mail server; IVR_SMTP_URL overrides it. Empty: no e-mail is sent.
    smtp_url: Annotated[str, AfterValidator(_smtp_url)] = ""
    email_from: str = "noodlijn@otys.example"
    # An incoming-webhook URL of a Teams or Slack channel; empty: no chat message.
    chat_webhook_url: Annotated[str, Field(pattern=r"^(https?://\S+)?$")] = ""
    chat_format: Literal["slack", "teams"] = "slack"
    # Text a caller their ticket number, and when it is acknowledged/resolved: only a caller
    # recognised on the call (caller ID or PIN), on a mobile of one of these countries, within
    # the caps per number (a day) and line-wide (an hour).
    caller_sms: bool = True
    caller_sms_countries: list[Country] = Field(default_factory=lambda: ["NL", "BE"], min_length=1)
    caller_sms_per_number_per_day: int = Field(default=10, ge=1, le=100)
    caller_sms_per_hour: int = Field(default=300, ge=1, le=100_000)
    # Unverified tickets are paged together: at most one digest in this many minutes.
    unverified_digest_minutes: int = Field(default=15, ge=1, le=1440)
    # How often each server process looks for due pages and messages (seconds).
    send_interval_seconds: float = Field(default=2.0, ge=0.2, le=60)
    # A message is given up after this many failed attempts (backoff doubles, at most 10 min).
    max_attempts: int = Field(default=8, ge=1, le=30)
    # /health reports the sender as behind when a due message has waited longer than this.
    behind_seconds: int = Field(default=120, ge=10, le=3600)


class Incidents(Strict):
    """Major incidents: when outage reports of several organisations become one incident."""

    # This many organisations reporting a major outage (triage key 1) within `window_minutes`
    # open an incident by themselves; later outage reports join it.
    threshold: int = Field(default=3, ge=2, le=100)
    window_minutes: int = Field(default=10, ge=1, le=1440)
    # Once an incident is acknowledged, level 1 gets at most one digest of the organisations
    # that joined since, in this many minutes; nothing is paged per ticket.
    digest_minutes: int = Field(default=15, ge=1, le=1440)


class Privacy(Strict):
    """How long personal data is kept, and when the service's daily purge runs."""

    # Days after the call: recordings (deleted at Twilio too), what was transcribed of them,
    # and the caller's number wherever it was noted.
    recording_days: int = Field(default=90, ge=1, le=3650)
    transcription_days: int = Field(default=90, ge=1, le=3650)
    caller_number_days: int = Field(default=90, ge=1, le=3650)
    # Days after a ticket was opened that its spoken description is kept, once it is not open.
    description_days: int = Field(default=365, ge=1, le=3650)
    # The service purges once a day, at the first chance from this hour on (local time).
    daily_purge: bool = True
    purge_hour: int = Field(default=3, ge=0, le=23)

    @property
    def shortest_days(self) -> int:
        """Return the shortest retention period, in days."""
        return min(
            self.recording_days,
            self.transcription_days,
            self.caller_number_days,
            self.description_days,
        )


def _network(value: str) -> str:
    """Accept an IP address or network, such as 10.0.0.0/8 or ::1."""
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IP address or network") from exc
    return value


# A bearer token for /metrics is empty (none) or at least this long.
MIN_METRICS_TOKEN_LENGTH = 16


class Metrics(Strict):
    """Who may read `GET /metrics`: these networks, or anyone with the bearer token."""

    allow: list[Annotated[str, AfterValidator(_network)]] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"]
    )
    # IVR_METRICS_TOKEN; empty: no token opens /metrics.
    token: SecretStr = SecretStr("")

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value()
        if token and len(token.strip()) < MIN_METRICS_TOKEN_LENGTH:
            raise ValueError(
                f"must be empty or at least {MIN_METRICS_TOKEN_LENGTH} characters; make one with: "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value


class Server(Strict):
    """How `ivr serve` runs gunicorn."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=2, ge=1, le=64)
    # Requests each worker runs in the app at once; more wait, already read, for their turn.
    # (Named for the thread pool that did this before the gevent workers.)
    threads: int = Field(default=4, ge=1, le=64)
    # Dashboard, API and metrics requests each worker runs at once, in places (and database
    # connections) of their own: support traffic never takes the webhooks'.
    support_threads: int = Field(default=2, ge=1, le=64)
    timeout: int = Field(default=30, ge=5, le=600)
    # Seconds a client has to send a request's line and headers, and again its body; an idle
    # kept-alive connection is closed after as long.
    read_timeout: int = Field(default=5, ge=1, le=60)


class Settings(Strict):
    """Every setting of the service, validated."""

    public_url: str = ""
    database_url: str = ""
    secret_key: SecretStr
    twilio_auth_token: SecretStr
    # Only needed to play recordings in the dashboard (Twilio serves them with basic auth).
    twilio_account_sid: Annotated[str, Field(pattern=r"^(AC[0-9a-fA-F]{32})?$")] = ""
    # Twilio's REST API (messages, recordings); tests point it at a local stand-in.
    twilio_api_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(:\d+)?/?$")] = (
        "https://api.twilio.com"
    )
    data_dir: Path = Path("var")
    journal_path: Path | None = None
    timezone: str = "Europe/Amsterdam"
    holiday_country: str = "NL"
    default_language: str = "nl"
    trusted_proxies: list[str] = Field(default_factory=list)
    database_timeout_seconds: float = Field(default=0.5, gt=0, le=30)
    # After a database failure, webhooks of this process skip it for this long (then retry).
    database_retry_seconds: float = Field(default=5.0, ge=0, le=300)
    # How often each server process tries to replay a non-empty outage journal.
    journal_replay_seconds: float = Field(default=10.0, ge=1, le=3600)
    server: Server = Field(default_factory=Server)
    hours: Schedule = Field(default_factory=Schedule)
    voices: dict[str, Voice]
    prompts: dict[str, dict[str, str]]
    office: OfficeLine
    emergency: EmergencyLine
    oncall: OnCall = Field(default_factory=OnCall)
    paging: Paging = Field(default_factory=Paging)
    incidents: Incidents = Field(default_factory=Incidents)
    privacy: Privacy = Field(default_factory=Privacy)
    metrics: Metrics = Field(default_factory=Metrics)
    helpdesk: Helpdesk = Field(default_factory=Helpdesk)
    # Texts of SMS and e-mail messages, per language, like the prompts.
    messages: dict[str, dict[str, str]]

    @field_validator("twilio_auth_token")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().strip()) < 8:
            raise ValueError("must be set (at least 8 characters), from the environment")
        return value

    @field_validator("secret_key")
    @classmethod
    def _strong(cls, value: SecretStr) -> SecretStr:
        # It signs sessions and CSRF tokens and keys the PIN hashes: a guessable key gives
        # away sessions and, with a copy of the database, every PIN.
        key = value.get_secret_value()
        if len(key) < MIN_SECRET_LENGTH or len(set(key)) < MIN_SECRET_SYMBOLS:
            raise ValueError(
                f"must be at least {MIN_SECRET_LENGTH} random characters, from the environment; "
                "make one with: python3 -c 'import secrets; print(secrets.token_hex(32))'"
            )
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        for proxy in value:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError as exc:
                raise ValueError(f"{proxy!r} is not an IP address or network") from exc
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url_shape(cls, value: str) -> str:
        value = value.rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _languages_complete(self) -> Settings:
        if self.default_language not in self.prompts:
            raise ValueError(f"default_language {self.default_language!r} has no prompts")
        reference = set(self.prompts[self.default_language])
        for language, table in self.prompts.items():
            if language not in self.voices:
                raise ValueError(f"prompts.{language} has no voices.{language}")
            missing = reference - set(table)
            if missing:
                raise ValueError(f"prompts.{language} lacks {', '.join(sorted(missing))}")
        for name, department in self.office.departments.items():
            missing = set(self.prompts) - set(department.names)
            if missing:
                raise ValueError(
                    f"office.departments.{name}.names lacks {', '.join(sorted(missing))}"
                )
        numbers = set(self.office.numbers) & set(self.emergency.numbers)
        if numbers:
            raise ValueError(f"{', '.join(sorted(numbers))} is both an office and emergency number")
        allowed = set(self.office.menu_keys())
        for language, table in self.prompts.items():
            fields = {f for _, f, _, _ in string.Formatter().parse(table.get("office_menu", ""))}
            unknown = fields - allowed - {None}
            if unknown:
                raise ValueError(
                    f"prompts.{language}.office_menu: unknown placeholder "
                    f"{{{sorted(unknown)[0]}}} (known: {', '.join(sorted(allowed))})"
                )
        return self

    @model_validator(mode="after")
    def _messages_complete(self) -> Settings:
        reference = set(self.messages.get(self.default_language, {}))
        if not reference:
            raise ValueError(f"messages.{self.default_language}: no message texts")
        for language in self.prompts:
            missing = reference - set(self.messages.get(language, {}))
            if missing:
                raise ValueError(f"messages.{language} lacks {', '.join(sorted(missing))}")
        return self

    @property
    def zone(self) -> ZoneInfo:
        """Return the time zone every schedule is read in."""
        return ZoneInfo(self.timezone)

    @property
    def resolved_database_url(self) -> str:
        """Return the database URL, defaulting to a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ivr.sqlite3').resolve()}"

    @property
    def resolved_journal_path(self) -> Path:
        """Return where the outage journal is written."""
        return (self.journal_path or self.data_dir / "journal.jsonl").resolve()

    def schedule_for(self, section: Schedule | None) -> Schedule:
        """Return a section's own schedule, or the shared default hours."""
        return section or self.hours


def _set_dotted(data: dict, dotted: str, value: str) -> None:
    """Set `a.b.c` in nested dicts, creating levels as needed."""
    *parents, leaf = dotted.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[leaf] = value


def _describe(error: dict) -> str:
    """Render one pydantic error as `key: problem`."""
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        env = [name for name, dotted in ENV_OVERRIDES.items() if dotted == key]
        hint = f" (set {env[0]} in the environment)" if env else ""
        return f"{key}: is missing{hint}"
    if not error["loc"]:
        # Whole-file checks already start their message with the keys concerned.
        return message
    return f"{key}: {message}"


def load_settings(
    path: str | os.PathLike | None = None,
    environ: dict[str, str] | None = None,
    overrides: dict | None = None,
) -> Settings:
    """Read the TOML file, apply environment overrides and validate everything."""
    environ = os.environ if environ is None else environ
    config_path = Path(path or environ.get("IVR_CONFIG") or DEFAULT_CONFIG)
    try:
        with open(config_path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"IVR_CONFIG: no configuration file at {config_path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML ({exc})") from exc
    for variable, dotted in ENV_OVERRIDES.items():
        if environ.get(variable):
            _set_dotted(data, dotted, environ[variable])
    for dotted, value in (overrides or {}).items():
        _set_dotted(data, dotted, value)
    secrets_from_environment(data, environ)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        raise ConfigError("configuration error: " + "; ".join(problems)) from None


def current_settings() -> Settings:
    """Return the settings of the service handling the current request or command."""
    from flask import current_app

    return current_app.config["SETTINGS"]
