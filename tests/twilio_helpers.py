"""Helpers for `ivr twilio wire` and `ivr doctor`: the numbers on the stand-in's account."""

from __future__ import annotations

import socket

from helpers import EMERGENCY_0900, EMERGENCY_NUMBER, OFFICE_NUMBER, PUBLIC_URL

from bench.standin import TwilioStandIn

ACCOUNT_SID = "AC" + "9" * 32
SMS_FROM = "+31612340000"
LINE_NUMBERS = (OFFICE_NUMBER, EMERGENCY_NUMBER, EMERGENCY_0900)

WIRED_VOICE = {
    "voice_url": f"{PUBLIC_URL}/voice/incoming",
    "voice_method": "POST",
    "voice_fallback_url": f"{PUBLIC_URL}/voice/fallback",
    "voice_fallback_method": "POST",
    "status_callback": f"{PUBLIC_URL}/voice/status",
    "status_callback_method": "POST",
    "voice_application_sid": "",
}
WIRED_SMS = {"sms_url": f"{PUBLIC_URL}/sms/incoming", "sms_method": "POST"}


def fresh_account(standin: TwilioStandIn, *numbers: str) -> TwilioStandIn:
    """Give the stand-in's account just these numbers (default: the lines' and the SMS one)."""
    with standin.lock:
        standin.numbers.clear()
        standin.number_updates.clear()
        standin.refuse_updates.clear()
        standin.sent.clear()
    for number in numbers or (*LINE_NUMBERS, SMS_FROM):
        standin.add_number(number)
    return standin


def twilio_env(standin: TwilioStandIn, **extra: str) -> dict[str, str]:
    """Return the environment that points the `ivr` command at the stand-in's account."""
    return {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_API_URL": standin.url,
        "IVR_SMS_FROM": SMS_FROM,
        **extra,
    }


def closed_port_url() -> str:
    """Return a loopback URL nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def report_lines(output: str) -> dict[str, str]:
    """Return doctor's lines by what they checked: {'public URL': 'FAIL  public URL: ...'}."""
    lines = {}
    for line in output.splitlines():
        status, _, rest = line.partition("  ")
        if status.strip() in ("OK", "WARN", "FAIL") and ": " in rest:
            lines[rest.strip().split(": ", 1)[0]] = line
    return lines
