"""`ivr twilio wire` points every number at the service, and `ivr doctor` sees whether it does.

Both talk to a local stand-in of Twilio's IncomingPhoneNumbers API through the twilio library's
own REST client (TWILIO_API_URL), so the requests, the basic auth and the JSON are the real ones.
"""

from __future__ import annotations

import pytest
from helpers import EMERGENCY_0900, EMERGENCY_NUMBER, OFFICE_NUMBER, PUBLIC_URL
from twilio_helpers import (
    ACCOUNT_SID,
    LINE_NUMBERS,
    SMS_FROM,
    WIRED_SMS,
    WIRED_VOICE,
    closed_port_url,
    fresh_account,
    report_lines,
    twilio_env,
)


@pytest.fixture
def twilio(twilio_account):
    return fresh_account(twilio_account)


@pytest.fixture
def ivr(cli, app, clock, twilio):
    """Run `ivr ...` against the stand-in's account, at the test's clock."""

    def run(*args: str, **env: str):
        with app.app_context():
            return cli(*args, env=twilio_env(twilio, **env))

    return run


def settings_of(twilio, number: str, fields: dict) -> dict:
    resource = twilio.number(number)
    return {name: resource[name] for name in fields}


def test_wire_points_every_line_and_the_sms_number_at_the_service(ivr, twilio):
    result = ivr("twilio", "wire")
    assert result.exit_code == 0, result.output
    for number in LINE_NUMBERS:
        assert settings_of(twilio, number, WIRED_VOICE) == WIRED_VOICE
        assert f"{number} (" in result.stdout
    assert settings_of(twilio, SMS_FROM, WIRED_SMS) == WIRED_SMS
    # The SMS number is no line: its voice settings are not ours to change.
    assert twilio.number(SMS_FROM)["voice_url"] == "https://demo.twilio.com/welcome/voice/"
    assert f"VoiceFallbackUrl (none) -> {PUBLIC_URL}/voice/fallback" in result.stdout, result.stdout
    assert f"all point at {PUBLIC_URL}" in result.stdout


def test_a_second_wire_changes_nothing_and_says_so(ivr, twilio):
    assert ivr("twilio", "wire").exit_code == 0
    updates = len(twilio.number_updates)
    again = ivr("twilio", "wire")
    assert again.exit_code == 0, again.output
    assert len(twilio.number_updates) == updates
    assert f"nothing changed: every number already points at {PUBLIC_URL}" in again.stdout
    assert again.stdout.count("already wired, unchanged") == 4


def test_wire_changes_only_what_differs(ivr, twilio):
    ivr("twilio", "wire")
    twilio.change_number(EMERGENCY_0900, voice_fallback_url="https://old.example.com/fallback")
    twilio.number_updates.clear()
    result = ivr("twilio", "wire")
    assert result.exit_code == 0, result.output
    assert twilio.number_updates == [
        (EMERGENCY_0900, {"VoiceFallbackUrl": f"{PUBLIC_URL}/voice/fallback"})
    ]
    assert (
        f"{EMERGENCY_0900} (emergency line): VoiceFallbackUrl https://old.example.com/fallback"
        f" -> {PUBLIC_URL}/voice/fallback" in result.stdout
    )


def test_a_dry_run_says_what_would_change_and_changes_nothing(ivr, twilio):
    result = ivr("twilio", "wire", "--dry-run")
    assert result.exit_code == 0, result.output
    assert twilio.number_updates == []
    assert f"{OFFICE_NUMBER} (office line): would set VoiceUrl" in result.stdout
    assert "would change 4 number(s)" in result.stdout


def test_wire_refuses_without_an_https_public_url_and_changes_nothing(ivr, twilio):
    for public_url, problem in (("", "public_url is not set"), ("http://ivr.example", "not https")):
        result = ivr("twilio", "wire", IVR_PUBLIC_URL=public_url)
        assert result.exit_code == 2
        assert problem in result.stderr and "nothing changed" in result.stderr
    assert twilio.number_updates == []


def test_a_number_not_on_the_account_is_named_and_the_others_are_wired(ivr, twilio):
    fresh_account(twilio, OFFICE_NUMBER, EMERGENCY_NUMBER, SMS_FROM)
    result = ivr("twilio", "wire")
    assert result.exit_code == 1
    (error,) = result.stderr.strip().splitlines()
    assert error.startswith(f"error: {EMERGENCY_0900} (emergency line): not found on Twilio")
    assert settings_of(twilio, OFFICE_NUMBER, WIRED_VOICE) == WIRED_VOICE
    assert settings_of(twilio, EMERGENCY_NUMBER, WIRED_VOICE) == WIRED_VOICE
    assert "1 number(s) not wired (3 changed, 0 already right)" in result.stdout


def test_a_number_only_partly_matching_is_not_taken_for_ours(ivr, twilio):
    # Twilio's PhoneNumber filter matches partial numbers: +313185849001 contains the office's.
    fresh_account(twilio, OFFICE_NUMBER + "1", EMERGENCY_NUMBER, EMERGENCY_0900, SMS_FROM)
    result = ivr("twilio", "wire")
    assert result.exit_code == 1
    assert f"error: {OFFICE_NUMBER} (office line): not found" in result.stderr
    assert twilio.number(OFFICE_NUMBER + "1")["voice_url"].startswith("https://demo.twilio")


def test_wire_takes_an_application_off_a_number_so_our_urls_answer(ivr, twilio):
    twilio.change_number(EMERGENCY_NUMBER, voice_application_sid="AP" + "1" * 32)
    result = ivr("twilio", "wire")
    assert result.exit_code == 0, result.output
    assert twilio.number(EMERGENCY_NUMBER)["voice_application_sid"] == ""
    assert f"VoiceApplicationSid AP{'1' * 32} -> (none)" in result.stdout


def test_a_number_on_a_sip_trunk_is_left_alone_and_named(ivr, twilio):
    twilio.change_number(OFFICE_NUMBER, trunk_sid="TK" + "2" * 32)
    result = ivr("twilio", "wire")
    assert result.exit_code == 1
    assert f"error: {OFFICE_NUMBER} (office line): its calls go to SIP trunk TK" in result.stderr
    assert twilio.number(OFFICE_NUMBER)["voice_url"].startswith("https://demo.twilio")
    assert settings_of(twilio, EMERGENCY_NUMBER, WIRED_VOICE) == WIRED_VOICE


def test_a_change_twilio_refuses_is_named_and_the_others_are_made(ivr, twilio):
    twilio.refuse_updates.add(EMERGENCY_NUMBER)
    result = ivr("twilio", "wire")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: {EMERGENCY_NUMBER} (emergency line): not changed: "
        "Twilio answered HTTP 400 21402: Unable to update record: Url is not a valid URL"
    )
    assert twilio.number(EMERGENCY_NUMBER)["voice_url"].startswith("https://demo.twilio")
    assert settings_of(twilio, EMERGENCY_0900, WIRED_VOICE) == WIRED_VOICE


def test_wrong_credentials_change_nothing_and_say_so_in_one_line(ivr, twilio):
    result = ivr("twilio", "wire", TWILIO_AUTH_TOKEN="not-the-token-of-this-account")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: Twilio refused TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (HTTP 401)"
    )
    assert twilio.number_updates == []


def test_an_unreachable_twilio_is_one_line_not_a_traceback(ivr):
    result = ivr("twilio", "wire", TWILIO_API_URL=closed_port_url())
    assert result.exit_code == 1
    assert result.stderr.startswith("error: Twilio not reachable at http://127.0.0.1:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_wire_needs_the_account_sid(ivr, twilio):
    result = ivr("twilio", "wire", TWILIO_ACCOUNT_SID="")
    assert result.exit_code == 2
    assert "TWILIO_ACCOUNT_SID is not set" in result.stderr


# ------------------------------------------------------------------------------ doctor


def test_doctor_passes_once_every_number_is_wired(ivr):
    assert ivr("twilio", "wire").exit_code == 0
    result = ivr("doctor")
    assert result.exit_code == 0, result.output
    lines = report_lines(result.stdout)
    assert not [line for line in lines.values() if line.startswith("FAIL")], result.stdout
    for number in (*LINE_NUMBERS, SMS_FROM):
        (line,) = [
            line for subject, line in lines.items() if subject.startswith(f"number {number}")
        ]
        assert line.startswith("OK") and f"wired to {PUBLIC_URL}" in line


def test_doctor_fails_naming_the_number_whose_fallback_points_elsewhere(ivr, twilio):
    ivr("twilio", "wire")
    twilio.change_number(EMERGENCY_0900, voice_fallback_url="https://old.example.com/fallback")
    result = ivr("doctor")
    assert result.exit_code == 1
    line = report_lines(result.stdout)[f"number {EMERGENCY_0900} (emergency line)"]
    assert line == (
        f"FAIL  number {EMERGENCY_0900} (emergency line): VoiceFallbackUrl is "
        f"https://old.example.com/fallback, must be {PUBLIC_URL}/voice/fallback; "
        "fix: run `ivr twilio wire`"
    )
    assert report_lines(result.stdout)[f"number {OFFICE_NUMBER} (office line)"].startswith("OK")


def test_doctor_only_looks_at_twilio(ivr, twilio):
    result = ivr("doctor")
    assert result.exit_code == 1
    assert twilio.number_updates == []
    line = report_lines(result.stdout)[f"number {OFFICE_NUMBER} (office line)"]
    assert "VoiceUrl is https://demo.twilio.com/welcome/voice/" in line
    assert "VoiceFallbackUrl is (none)" in line and "StatusCallback is (none)" in line


def test_doctor_names_a_number_missing_from_the_account(ivr, twilio):
    fresh_account(twilio, OFFICE_NUMBER, EMERGENCY_NUMBER, SMS_FROM)
    ivr("twilio", "wire")
    result = ivr("doctor")
    assert result.exit_code == 1
    line = report_lines(result.stdout)[f"number {EMERGENCY_0900} (emergency line)"]
    assert line.startswith("FAIL") and f"not found on Twilio account {ACCOUNT_SID}" in line


def test_doctor_fails_an_sms_number_that_cannot_send_sms(ivr, twilio):
    fresh_account(twilio, *LINE_NUMBERS)
    twilio.add_number(SMS_FROM, sms=False)
    ivr("twilio", "wire")
    result = ivr("doctor")
    line = report_lines(result.stdout)[f"number {SMS_FROM} (SMS sender)"]
    assert line.startswith("FAIL") and "it cannot send SMS" in line


def test_doctor_says_when_twilio_cannot_be_reached_or_refuses_us(ivr):
    unreachable = ivr("doctor", TWILIO_API_URL=closed_port_url())
    refused = ivr("doctor", TWILIO_AUTH_TOKEN="not-the-token-of-this-account")
    for result, problem in ((unreachable, "not reachable at"), (refused, "HTTP 401")):
        assert result.exit_code == 1
        line = report_lines(result.stdout)["Twilio numbers"]
        assert line.startswith("FAIL  Twilio numbers: not checked: Twilio") and problem in line


def test_doctor_without_the_account_sid_fails_the_numbers_and_warns_about_recordings(ivr):
    result = ivr("doctor", TWILIO_ACCOUNT_SID="")
    assert result.exit_code == 1
    lines = report_lines(result.stdout)
    assert lines["Twilio numbers"].startswith("FAIL")
    assert "TWILIO_ACCOUNT_SID is not set" in lines["Twilio numbers"]
    assert lines["recordings"].startswith("WARN") and "cannot be played" in lines["recordings"]
