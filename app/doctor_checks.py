"""The checks `ivr doctor` makes, as plain functions that look and never change anything.

Each returns `CheckResult`s: OK, WARN (worth knowing, the service works) or FAIL (calls, pages
or data are at risk), with what was checked and, when something is wrong, what to do about it.
The database ones read through a read-only connection; Twilio is only asked, never changed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from core.settings import Settings

OK, WARN, FAIL = "OK", "WARN", "FAIL"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: its status, what was checked, what was found, what to do."""

    status: str
    subject: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        """Return the one line people read: 'FAIL  subject: detail; fix: ...'."""
        text = f"{self.status:<4}  {self.subject}: {self.detail}"
        return f"{text}; fix: {self.fix}" if self.fix else text


# ------------------------------------------------------------------------------ settings


def check_public_url(settings: Settings) -> CheckResult:
    """Check that Twilio can reach the service at an https `public_url`."""
    url = settings.public_url
    subject = "public URL"
    if not url:
        return CheckResult(
            FAIL,
            subject,
            "public_url is not set: signatures are checked against whatever address a request "
            "names, and Twilio cannot be told where the service is",
            "set IVR_PUBLIC_URL=https://... (the address Twilio reaches the service at)",
        )
    if not url.startswith("https://"):
        return CheckResult(
            FAIL,
            subject,
            f"{url} is not https: callers' numbers and PINs cross the internet readable",
            "serve it behind TLS and set IVR_PUBLIC_URL=https://...",
        )
    host = urlsplit(url).hostname or ""
    if _is_private_host(host):
        return CheckResult(
            FAIL,
            subject,
            f"{url} names {host}, which Twilio cannot reach from the internet",
            "set IVR_PUBLIC_URL to the public https address of the service",
        )
    return CheckResult(OK, subject, f"{url} (https)")


def _is_private_host(host: str) -> bool:
    """Return whether `host` is this machine or a private network: out of Twilio's reach."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def smallest_period(text: str) -> int:
    """Return the length of the shortest piece that `text` repeats (its own length if none)."""
    border = [0] * len(text)  # the prefix function of Knuth, Morris and Pratt
    for i in range(1, len(text)):
        k = border[i - 1]
        while k and text[i] != text[k]:
            k = border[k - 1]
        border[i] = k + (text[i] == text[k])
    return len(text) - (border[-1] if text else 0)


def check_secret_key(settings: Settings) -> CheckResult:
    """Check the secret key beyond what start-up refuses: no repeated piece, no shared secret."""
    key = settings.secret_key.get_secret_value()
    subject = "secret key"
    fix = (
        "set IVR_SECRET_KEY to a new random key, made with "
        "python3 -c 'import secrets; print(secrets.token_hex(32))' "
        "(then re-import the directory: PINs are keyed with it)"
    )
    period = smallest_period(key)
    if period <= len(key) // 2:
        return CheckResult(
            FAIL, subject, f"IVR_SECRET_KEY repeats a piece of {period} characters: weak", fix
        )
    if key == settings.twilio_auth_token.get_secret_value():
        return CheckResult(FAIL, subject, "IVR_SECRET_KEY is the Twilio auth token", fix)
    if key == settings.metrics.token.get_secret_value():
        return CheckResult(FAIL, subject, "IVR_SECRET_KEY is the metrics token", fix)
    return CheckResult(OK, subject, f"{len(key)} characters, {len(set(key))} different, not reused")


def check_recordings(settings: Settings) -> CheckResult:
    """Check that recordings can be fetched from Twilio (and deleted by the retention purge)."""
    if not settings.twilio_account_sid:
        return CheckResult(
            WARN,
            "recordings",
            "cannot be played in the dashboard, nor deleted at Twilio by the retention purge: "
            "TWILIO_ACCOUNT_SID is not set",
            "set TWILIO_ACCOUNT_SID",
        )
    return CheckResult(OK, "recordings", "can be fetched from Twilio (TWILIO_ACCOUNT_SID is set)")


# ------------------------------------------------------------------------------ Twilio


def check_numbers(settings: Settings) -> list[CheckResult]:
    """Check that every configured number points at this service: one result per number."""
    from app.wiring import TwilioUnavailable, find_number, number_plans

    subject = "Twilio numbers"
    if not settings.twilio_account_sid:
        return [
            CheckResult(
                FAIL,
                subject,
                "not checked: TWILIO_ACCOUNT_SID is not set",
                "set TWILIO_ACCOUNT_SID (the account that holds the numbers)",
            )
        ]
    if not settings.public_url:
        return [
            CheckResult(
                FAIL,
                subject,
                "not checked: without public_url there is no address to compare them with",
                "set IVR_PUBLIC_URL, then run `ivr twilio wire`",
            )
        ]
    results = []
    for plan in number_plans(settings):
        try:
            resource = find_number(settings, plan.number)
        except TwilioUnavailable as exc:
            fix = "check TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_API_URL and the network"
            results.append(CheckResult(FAIL, subject, f"not checked: {exc}", fix))
            break
        results.append(number_result(settings, plan, resource))
    return results


def number_result(settings: Settings, plan, resource) -> CheckResult:
    """Judge one number as Twilio holds it against what it must point at."""
    from app.wiring import differences, trunk_in_the_way

    subject = f"number {plan.label}"
    if resource is None:
        return CheckResult(
            FAIL,
            subject,
            f"not found on Twilio account {settings.twilio_account_sid}",
            "buy or port it into this account, or correct the number in the configuration",
        )
    problems = [difference.describe() for difference in differences(plan, resource)]
    fix = "run `ivr twilio wire`" if problems else ""
    trunk = trunk_in_the_way(plan, resource)
    if trunk:
        problems.insert(0, trunk)
    capabilities = {str(k).lower(): v for k, v in (resource.capabilities or {}).items()}
    if "SMS sender" in plan.roles and capabilities.get("sms") is False:
        problems.append("it cannot send SMS")
        fix = "choose an SMS-capable number for IVR_SMS_FROM" + (f", then {fix}" if fix else "")
    if problems:
        return CheckResult(FAIL, subject, "; ".join(problems), fix)
    return CheckResult(OK, subject, f"wired to {settings.public_url}")


# ------------------------------------------------------------------------------ paging


# Per channel: what it needs set before it can send.
CHANNEL_FIXES = {
    "sms": "set IVR_SMS_FROM and TWILIO_ACCOUNT_SID",
    "email": "set IVR_SMTP_URL to a mail server that answers",
}


def paging_obstacles(settings: Settings) -> dict[str, str]:
    """Return, per configured channel that cannot send, why not (configuration, mail server)."""
    from ivr.messaging.channels import SendError, reach_mail_server

    obstacles = {}
    paging = settings.paging
    if "sms" in paging.channels:
        missing = [
            name
            for name, value in (
                ("IVR_SMS_FROM", paging.sms_from),
                ("TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
            )
            if not value
        ]
        if missing:
            obstacles["sms"] = f"{' and '.join(missing)} not set"
    if "email" in paging.channels:
        if not paging.smtp_url:
            obstacles["email"] = "IVR_SMTP_URL not set"
        else:
            try:
                reach_mail_server(settings)
            except SendError as exc:
                obstacles["email"] = str(exc)
    return obstacles


def check_paging(settings: Settings, recent_failures: dict[str, str]) -> CheckResult:
    """Check that paging, when on, has a channel that can send.

    `recent_failures` names the channels whose every attempt of late failed, with the last error.
    """
    subject = "paging"
    paging = settings.paging
    if not paging.enabled:
        return CheckResult(
            WARN,
            subject,
            "off (paging.enabled = false): nobody is paged about urgent calls nobody took",
            "set paging.enabled = true, with a channel that can send",
        )
    obstacles = paging_obstacles(settings)
    for channel, error in recent_failures.items():
        obstacles.setdefault(channel, f"every attempt of the last day failed: {error}")
    working = [channel for channel in paging.channels if channel not in obstacles]
    if paging.chat_webhook_url:
        working.append("chat")
    why = "; ".join(f"{channel}: {reason}" for channel, reason in obstacles.items())
    fix = ", or ".join(CHANNEL_FIXES[channel] for channel in obstacles if channel in CHANNEL_FIXES)
    if not working:
        return CheckResult(FAIL, subject, f"on, but no channel can send ({why})", fix)
    if obstacles:
        fix += f" (or take {', '.join(obstacles)} out of paging.channels)"
        return CheckResult(WARN, subject, f"sends by {', '.join(working)} only ({why})", fix)
    return CheckResult(OK, subject, f"can send by {', '.join(working)}")


# ------------------------------------------------------------------------------ rota


def open_windows(settings: Settings, start: datetime, end: datetime) -> list[tuple]:
    """Return the stretches from `start` to `end` in which an emergency call rings someone.

    That is the emergency line's hours, or all the time when paging also pages out of hours.
    """
    from ivr.hours import is_working_day

    if settings.paging.out_of_hours:
        return [(start, end)]
    schedule = settings.schedule_for(settings.emergency.schedule)
    zone = settings.zone
    windows = []
    day = start.astimezone(zone).date()
    while day <= end.astimezone(zone).date():
        if is_working_day(schedule, day, country=settings.holiday_country):
            opens = max(datetime.combine(day, schedule.opens, tzinfo=zone), start)
            closes = min(datetime.combine(day, schedule.closes, tzinfo=zone), end)
            if opens < closes:
                windows.append((opens, closes))
        day += timedelta(days=1)
    return windows


def uncovered(windows: list[tuple], covered: list[tuple]) -> list[tuple]:
    """Return the parts of `windows` that no stretch in `covered` covers."""
    gaps = []
    spans = sorted(covered)
    for start, end in windows:
        cursor = start
        for begin, finish in spans:
            if finish <= cursor or begin >= end:
                continue
            if begin > cursor:
                gaps.append((cursor, begin))
            cursor = max(cursor, finish)
        if cursor < end:
            gaps.append((cursor, end))
    return gaps


def describe_span(start: datetime, end: datetime, zone) -> str:
    """Say a stretch of time in local time: 'Thu 10 Dec 08:30-17:30'."""
    start, end = start.astimezone(zone), end.astimezone(zone)
    if start.date() == end.date():
        return f"{start:%a %d %b %H:%M}-{end:%H:%M}"
    return f"{start:%a %d %b %H:%M} - {end:%a %d %b %H:%M}"
