from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import AUTH_TOKEN, SECRET_KEY

from app.cli import main
from core.settings import DEFAULT_CONFIG, ConfigError, load_settings

ENVIRON = {"TWILIO_AUTH_TOKEN": AUTH_TOKEN, "IVR_SECRET_KEY": SECRET_KEY}


def config_error(environ=None, path=None, **overrides) -> str:
    """Load settings that must fail and return the one-line message."""
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=ENVIRON if environ is None else environ, overrides=overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_default_configuration_loads_with_secrets_from_the_environment():
    settings = load_settings(environ=ENVIRON)
    assert settings.office.numbers == ["+31318584900"]
    assert settings.office.max_misses == 2
    assert settings.office.english_key == "9"
    assert settings.office.extension_max_tries == 3
    assert settings.office.colleague_dial_timeout == 20
    assert settings.hours.opens.isoformat() == "08:30:00"
    assert settings.schedule_for(settings.office.schedule) is settings.hours


def test_caller_texts_default_to_dutch_and_belgian_mobiles_and_unverified_callers_ring():
    settings = load_settings(environ=ENVIRON, overrides={"paging.caller_sms_countries": ["nl"]})
    assert settings.paging.caller_sms_countries == ["NL"]
    settings = load_settings(environ=ENVIRON)
    assert settings.paging.caller_sms_countries == ["NL", "BE"]
    assert settings.emergency.unverified == "ring"


def test_environment_overrides_the_file():
    settings = load_settings(
        environ={**ENVIRON, "IVR_DATABASE_URL": "sqlite:////tmp/x.db", "IVR_WORKERS": "5"}
    )
    assert settings.resolved_database_url == "sqlite:////tmp/x.db"
    assert settings.server.workers == 5


@pytest.mark.parametrize(
    ("overrides", "key", "problem"),
    [
        ({"office.reception": ["0318584901"]}, "office.reception.0", "international format"),
        ({"office.reception": ["+31 318 584 901"]}, "office.reception.0", "E.164"),
        ({"office.departments.finance.numbers": ["+3112"]}, "finance.numbers.0", "not a valid"),
        ({"office.colleagues": [{"extension": "201", "name": "A", "number": "12"}]}, "number", ""),
        ({"office.bogus": 1}, "office.bogus", "Extra inputs are not permitted"),
        ({"colour": "blue"}, "colour", "Extra inputs are not permitted"),
        ({"hours.opens": "18:00"}, "hours", "opens must be earlier than closes"),
        (
            {"office.departments.sales.schedule": {"opens": "17:00", "closes": "09:00"}},
            "office.departments.sales.schedule",
            "opens must be earlier than closes",
        ),
        ({"hours.days": ["mon", "funday"]}, "hours.days.1", ""),
        ({"office.emergency_key": "1"}, "office", "overlap"),
        ({"office.max_misses": 0}, "office.max_misses", "greater than or equal to 1"),
        ({"office.extension_max_tries": 0}, "office.extension_max_tries", ""),
        ({"office.colleague_dial_timeout": 1000}, "office.colleague_dial_timeout", ""),
        ({"timezone": "Europe/Atlantis"}, "timezone", "unknown time zone"),
        (
            {"emergency.pin_guard_failures": 5},
            "emergency",
            "pin_guard_failures must be more than pin_lockout_failures",
        ),
        ({"prompts.en.office_menu": "Press {bogus_key}."}, "prompts.en.office_menu", "bogus_key"),
        (
            {
                "office.departments.Finance Desk": {
                    "key": "5",
                    "names": {"nl": "x", "en": "x"},
                    "numbers": ["+31318584910"],
                }
            },
            "departments.Finance Desk",
            "lower-case",
        ),
        ({"metrics.allow": ["10.0.0.0/8", "intranet"]}, "metrics.allow.1", "not an IP address"),
        ({"metrics.token": "short"}, "metrics.token", "at least 16 characters"),
        (
            {"paging.caller_sms_countries": ["NL", "XX"]},
            "paging.caller_sms_countries.1",
            "not a country code",
        ),
        (
            {"paging.caller_sms_countries": ["001"]},
            "paging.caller_sms_countries.0",
            "not a country code",
        ),
        ({"paging.caller_sms_per_hour": 0}, "paging.caller_sms_per_hour", "greater than or equal"),
        (
            {"paging.caller_sms_per_number_per_day": -1},
            "paging.caller_sms_per_number_per_day",
            "greater than or equal",
        ),
        (
            {"paging.unverified_digest_minutes": 0},
            "paging.unverified_digest_minutes",
            "greater than or equal",
        ),
        ({"emergency.unverified": "hangup"}, "emergency.unverified", "'ring' or 'voicemail'"),
    ],
)
def test_bad_setting_fails_with_one_line_naming_the_key(overrides, key, problem):
    message = config_error(**overrides)
    assert key in message
    assert problem in message


def test_metrics_are_for_loopback_and_the_token_comes_from_the_environment():
    settings = load_settings(environ=ENVIRON)
    assert settings.metrics.allow == ["127.0.0.0/8", "::1/128"]
    assert settings.metrics.token.get_secret_value() == ""
    token = secrets.token_urlsafe(24)
    settings = load_settings(environ={**ENVIRON, "IVR_METRICS_TOKEN": token})
    assert settings.metrics.token.get_secret_value() == token
    assert token not in repr(settings)


def test_missing_secret_names_the_environment_variable():
    message = config_error(environ={"TWILIO_AUTH_TOKEN": AUTH_TOKEN})
    assert "secret_key" in message and "IVR_SECRET_KEY" in message


def test_missing_twilio_token_names_the_environment_variable():
    message = config_error(environ={"IVR_SECRET_KEY": SECRET_KEY})
    assert "twilio_auth_token" in message and "TWILIO_AUTH_TOKEN" in message


def test_blank_secret_is_refused():
    message = config_error(environ={**ENVIRON, "IVR_SECRET_KEY": "short"})
    assert "secret_key" in message


@pytest.mark.parametrize(
    "weak", ["password", "passwordpasswordpasswordpassword", "a" * 64, "0123456789" * 3]
)
def test_a_weak_secret_key_is_refused_with_how_to_make_one(weak):
    message = config_error(environ={**ENVIRON, "IVR_SECRET_KEY": weak})
    assert message.count("\n") == 0
    assert "secret_key" in message and "32 random characters" in message
    assert "secrets.token_hex(32)" in message


def test_a_random_secret_key_is_accepted():
    key = secrets.token_hex(32)
    assert (
        load_settings(environ={**ENVIRON, "IVR_SECRET_KEY": key}).secret_key.get_secret_value()
        == key
    )


def test_missing_prompt_in_one_language_is_named(tmp_path):
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    text = text.replace('voicemail_empty = "We did not receive a message. Goodbye."\n', "")
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    message = config_error(path=path)
    assert "prompts.en" in message and "voicemail_empty" in message


def test_missing_config_file_names_ivr_config(tmp_path):
    message = config_error(environ={**ENVIRON, "IVR_CONFIG": str(tmp_path / "nope.toml")})
    assert message.startswith("IVR_CONFIG")


def test_broken_toml_is_reported_on_one_line(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[office\nnumbers = 1\n", encoding="utf-8")
    assert str(path) in config_error(path=path)


def test_cli_stops_with_one_line_on_a_bad_config(tmp_path: Path, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_text(
        DEFAULT_CONFIG.read_text(encoding="utf-8").replace(
            'reception = ["+31318584901"]', 'reception = ["0318 584 901"]'
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("IVR_CONFIG", str(path))
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("IVR_SECRET_KEY", SECRET_KEY)
    result = CliRunner().invoke(main, ["hours", "set", "open"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "office.reception.0" in lines[0]
