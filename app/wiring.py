"""What each of our Twilio numbers must point at, and how it differs from what Twilio holds.

Read by `ivr twilio wire` (which changes what differs) and `ivr doctor` (which only reports it).
Both talk to Twilio's IncomingPhoneNumbers API through the twilio client of the messaging side.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException

from core.settings import Settings
from ivr.messaging.channels import twilio_client

# The paths Twilio must call, as PRODUCT.md fixes them.
VOICE_PATH = "/voice/incoming"
FALLBACK_PATH = "/voice/fallback"
STATUS_PATH = "/voice/status"
SMS_PATH = "/sms/incoming"


@dataclass(frozen=True)
class Field:
    """One setting of a Twilio number: its API name (as in the console's docs) and attribute."""

    api: str
    attribute: str


VOICE_URL = Field("VoiceUrl", "voice_url")
VOICE_METHOD = Field("VoiceMethod", "voice_method")
FALLBACK_URL = Field("VoiceFallbackUrl", "voice_fallback_url")
FALLBACK_METHOD = Field("VoiceFallbackMethod", "voice_fallback_method")
STATUS_CALLBACK = Field("StatusCallback", "status_callback")
STATUS_METHOD = Field("StatusCallbackMethod", "status_callback_method")
VOICE_APPLICATION = Field("VoiceApplicationSid", "voice_application_sid")
SMS_URL = Field("SmsUrl", "sms_url")
SMS_METHOD = Field("SmsMethod", "sms_method")
SMS_APPLICATION = Field("SmsApplicationSid", "sms_application_sid")


@dataclass(frozen=True)
class NumberPlan:
    """A number of ours and every setting it must have; an empty value means 'none'."""

    number: str
    roles: tuple[str, ...]
    wanted: tuple[tuple[Field, str], ...]

    @property
    def label(self) -> str:
        """Return the number with what it is for: '+31318584900 (office line)'."""
        return f"{self.number} ({', '.join(self.roles)})"


@dataclass(frozen=True)
class Difference:
    """A setting of a number that is not what it must be."""

    field: Field
    current: str
    wanted: str

    def describe(self) -> str:
        """Say it for people: 'VoiceFallbackUrl is https://old/x, must be https://new/y'."""
        return f"{self.field.api} is {self.current or '(none)'}, must be {self.wanted or '(none)'}"

    def change(self) -> str:
        """Say the change for people: 'VoiceUrl (none) -> https://...'."""
        return f"{self.field.api} {self.current or '(none)'} -> {self.wanted or '(none)'}"


class TwilioUnavailable(Exception):
    """Twilio could not be asked (unreachable, refused our credentials); one line for people."""


class ChangeRefused(Exception):
    """Twilio refused the change of one number (say, a URL it does not take); one line."""


def voice_settings(public_url: str) -> tuple[tuple[Field, str], ...]:
    """Return what a line's number must be set to: our three voice webhooks, all POST."""
    return (
        (VOICE_URL, public_url + VOICE_PATH),
        (VOICE_METHOD, "POST"),
        (FALLBACK_URL, public_url + FALLBACK_PATH),
        (FALLBACK_METHOD, "POST"),
        (STATUS_CALLBACK, public_url + STATUS_PATH),
        (STATUS_METHOD, "POST"),
        # An application on the number would take its calls instead of the URLs above.
        (VOICE_APPLICATION, ""),
    )


def sms_settings(public_url: str) -> tuple[tuple[Field, str], ...]:
    """Return what the SMS number must be set to: our incoming-message webhook, POST."""
    return ((SMS_URL, public_url + SMS_PATH), (SMS_METHOD, "POST"), (SMS_APPLICATION, ""))


def number_plans(settings: Settings) -> list[NumberPlan]:
    """Return every configured number with what it must point at, lines first, then SMS."""
    public_url = settings.public_url
    roles: dict[str, list[str]] = {}
    wanted: dict[str, list[tuple[Field, str]]] = {}
    lines = [(n, "office line") for n in settings.office.numbers]
    lines += [(n, "emergency line") for n in settings.emergency.numbers]
    for number, role in lines:
        roles.setdefault(number, []).append(role)
        wanted.setdefault(number, []).extend(voice_settings(public_url))
    sms_from = settings.paging.sms_from
    if sms_from:
        roles.setdefault(sms_from, []).append("SMS sender")
        wanted.setdefault(sms_from, []).extend(sms_settings(public_url))
    return [NumberPlan(n, tuple(roles[n]), tuple(wanted[n])) for n in roles]


def unusable_setup(settings: Settings) -> str | None:
    """Say why the numbers cannot be pointed at this service with these settings, or None."""
    if not settings.public_url:
        return (
            "public_url is not set: Twilio needs this service's address; "
            "set IVR_PUBLIC_URL=https://... (the address Twilio reaches it at)"
        )
    if not settings.public_url.startswith("https://"):
        return (
            f"public_url {settings.public_url} is not https: callers' numbers and PINs would "
            "cross the internet readable; serve it behind TLS and set IVR_PUBLIC_URL=https://..."
        )
    if not settings.twilio_account_sid:
        return "TWILIO_ACCOUNT_SID is not set: it names the account that holds the numbers"
    return None


def trunk_in_the_way(plan: NumberPlan, resource) -> str | None:
    """Say that a SIP trunk takes the number's calls instead of its URLs, or None."""
    trunk = getattr(resource, "trunk_sid", None)
    if trunk and any(field is VOICE_URL for field, _ in plan.wanted):
        return (
            f"its calls go to SIP trunk {trunk}, which overrides VoiceUrl; "
            "take the number off the trunk in Twilio's console"
        )
    return None


def differences(plan: NumberPlan, resource) -> list[Difference]:
    """Return every setting of the number at Twilio that is not what the plan wants."""
    found = []
    for field, value in plan.wanted:
        current = getattr(resource, field.attribute, None) or ""
        if current != value:
            found.append(Difference(field, current, value))
    return found


def describe_twilio_error(exc: Exception, settings: Settings) -> str:
    """Say in one line why Twilio could not be asked."""
    status = getattr(exc, "status", None)
    if status is None and isinstance(exc, TwilioException) and len(exc.args) > 1:
        status = getattr(exc.args[1], "status_code", None)  # a list page that failed
    if status == 401:
        return "Twilio refused TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (HTTP 401)"
    if isinstance(exc, TwilioRestException):
        return f"Twilio answered HTTP {status} {exc.code or ''}: {exc.msg}"[:300]
    if status is not None:
        return f"Twilio answered HTTP {status}"
    return f"Twilio not reachable at {settings.twilio_api_url} ({type(exc).__name__})"


def find_number(settings: Settings, number: str):
    """Return the account's IncomingPhoneNumber resource of `number`, or None when it has none.

    Raises TwilioUnavailable when Twilio cannot be asked.
    """
    try:
        # Twilio matches a partial number: keep only the exact one.
        listed = twilio_client(settings).incoming_phone_numbers.list(phone_number=number)
    except (TwilioException, requests.RequestException) as exc:
        raise TwilioUnavailable(describe_twilio_error(exc, settings)) from exc
    return next((r for r in listed if r.phone_number == number), None)


def apply_differences(settings: Settings, sid: str, found: list[Difference]) -> None:
    """Set the differing settings of the number `sid` to what they must be, in one request."""
    changes = {difference.field.attribute: difference.wanted for difference in found}
    try:
        twilio_client(settings).incoming_phone_numbers(sid).update(**changes)
    except TwilioRestException as exc:
        problem = describe_twilio_error(exc, settings)
        if 400 <= exc.status < 500 and exc.status not in (401, 429):
            raise ChangeRefused(problem) from exc
        raise TwilioUnavailable(problem) from exc
    except (TwilioException, requests.RequestException) as exc:
        raise TwilioUnavailable(describe_twilio_error(exc, settings)) from exc
