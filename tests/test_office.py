from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from helpers import AMSTERDAM, OFFICE_NUMBER, PUBLIC_URL, dialled, spoken
from sqlalchemy import func, select
from sqlalchemy.exc import DataError, OperationalError

from ivr.models import CallLog
from ivr.prompts import Speaker
from tickets.availability import set_hours_override
from tickets.models import CallbackRequest

# A Tuesday morning in March: every team and reception is open.
OPEN_MOMENT = datetime(2026, 3, 10, 10, 0, tzinfo=AMSTERDAM)
# Friday evening: closed until Monday 16 March 08:30.
FRIDAY_EVENING = datetime(2026, 3, 13, 18, 0, tzinfo=AMSTERDAM)
SATURDAY = datetime(2026, 3, 14, 11, 0, tzinfo=AMSTERDAM)

CALLER = "+31612345678"
RECEPTION = ["+31318584901"]
FINANCE = ["+31318584910"]
SALES = ["+31318584920", "+31318584921"]
ANNA = "+31318584931"
PIETER = "+31318584932"


@pytest.fixture(autouse=True)
def open_office(clock):
    """Start every office test on OPEN_MOMENT; a test sets `clock.now` to move it."""
    clock.now = OPEN_MOMENT


def configured_numbers(settings) -> set[str]:
    numbers = set(settings.office.reception)
    for department in settings.office.departments.values():
        numbers.update(department.numbers)
    numbers.update(colleague.number for colleague in settings.office.colleagues)
    return numbers


def text(settings, key: str, lang: str = "nl", **values) -> str:
    return Speaker.for_language(settings, lang).text(key, **values)


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def path(url: str) -> str:
    return urlsplit(url).path


def top_verbs(root: ET.Element) -> list[str]:
    return [child.tag for child in root]


def assert_menu(root: ET.Element, settings, lang: str = "nl") -> ET.Element:
    """Assert the TwiML is the menu with barge-in and a way back on silence; return the Gather."""
    gather = root.find("Gather")
    assert gather is not None, ET.tostring(root, encoding="unicode")
    assert gather.get("numDigits") == "1"
    assert path(gather.get("action")) == "/voice/office/choice"
    assert query(gather.get("action"))["lang"] == lang
    says = gather.findall("Say")
    assert says and says[-1].text == text(settings, "office_menu", lang, **menu_keys(settings))
    assert {say.get("language") for say in says} == {settings.voices[lang].language}
    assert root.find("Say") is None, "prompts outside the Gather cannot be interrupted"
    redirect = root.find("Redirect")
    assert top_verbs(root) == ["Gather", "Redirect"]
    assert redirect.get("method") == "POST"
    assert path(redirect.text) == "/voice/office/choice"
    assert query(redirect.text) == query(gather.get("action"))
    return gather


def menu_keys(settings) -> dict[str, str]:
    return settings.office.menu_keys()


def assert_dials_reception(root: ET.Element) -> None:
    assert dialled(root) == RECEPTION
    dial = root.find("Dial")
    assert path(dial.get("action")) == "/voice/office/reception-dialed"
    assert dial.get("timeout") == "30"


def assert_voicemail(root: ET.Element, department: str, hours: str, lang: str = "nl") -> None:
    record = root.find("Record")
    assert record is not None, ET.tostring(root, encoding="unicode")
    assert path(record.get("action")) == "/voice/office/voicemail"
    assert query(record.get("action")) == {"dept": department, "lang": lang, "hours": hours}
    assert record.get("maxLength") == "120"
    assert record.get("playBeep") == "true"
    assert dialled(root) == []
    # If nothing at all is recorded Twilio runs what follows the Record: a goodbye, no silence.
    assert top_verbs(root)[-3:] == ["Record", "Say", "Hangup"]


def leave_message(call, root: ET.Element, **params) -> ET.Element:
    record = root.find("Record")
    values = {
        "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE123",
        "RecordingSid": "RE123",
        "RecordingDuration": "14",
        "Digits": "hangup",
    }
    values.update(params)
    return call.post(record.get("action"), **values)


def trail(session, sid: str) -> list[str]:
    log = session.scalar(select(CallLog).where(CallLog.sid == sid))
    session.refresh(log)
    return log.choices.split()


def callbacks(session) -> list[CallbackRequest]:
    session.expire_all()
    return list(session.scalars(select(CallbackRequest)))


# ------------------------------------------------------------------ the menu


def test_greeting_offers_the_menu_with_barge_in_and_logs_the_call(phone, settings, session):
    call = phone()
    root = call.start()
    gather = assert_menu(root, settings)
    says = [say.text for say in gather.findall("Say")]
    assert says[0] == text(settings, "office_welcome")
    assert "toets 1" in says[1] and "toets 4" in says[1] and "press 9" in says[1]
    assert gather.get("timeout") == "6"
    log = session.scalar(select(CallLog).where(CallLog.sid == call.sid))
    assert (log.line, log.caller_id, log.to_number) == ("office", CALLER, OFFICE_NUMBER)


def test_retried_first_webhook_logs_the_call_once(phone, session):
    call = phone()
    call.post("/voice/incoming")
    call.post("/voice/incoming")
    assert session.scalar(select(func.count()).select_from(CallLog)) == 1


@pytest.mark.parametrize(
    "settings_overrides", [{"office.english_key": "8", "office.colleague_key": "5"}]
)
def test_menu_prompt_names_the_configured_keys(phone, settings):
    call = phone()
    root = call.start()
    menu = assert_menu(root, settings).findall("Say")[-1].text
    assert "press 8" in menu and "toets 5" in menu and "toets 4" not in menu
    english = call.press(root, "8")
    assert_menu(english, settings, "en")
    assert query(call.press(english, "5").find("Gather").get("action"))["lang"] == "en"


def test_english_key_switches_the_rest_of_the_call_to_english(phone, settings, session):
    call = phone()
    root = call.press(call.start(), "9")
    gather = assert_menu(root, settings, "en")
    assert gather.find("Say").text == text(settings, "office_welcome", "en")
    root = call.press(root, "1")
    assert spoken(root) == text(
        settings, "department_connecting", "en", department="the finance department"
    )
    assert query(root.find("Dial").get("action")) == {"dept": "finance", "lang": "en"}
    root = call.dial_result(root, "no-answer")
    assert "Unfortunately nobody from the finance department" in spoken(root)
    assert {say.get("language") for say in root.iter("Say")} == {"en-GB"}
    assert_voicemail(root, "finance", "in", "en")
    root = leave_message(call, root)
    assert spoken(root) == text(settings, "voicemail_thanks", "en")
    steps = trail(session, call.sid)
    assert steps[0] == "lang:en"
    log = session.scalar(select(CallLog).where(CallLog.sid == call.sid))
    assert log.language == "en"


def test_star_repeats_the_menu_without_counting_a_miss(phone, settings):
    call = phone()
    root = call.start()
    for _ in range(5):
        root = call.press(root, "*")
        gather = assert_menu(root, settings)
        assert len(gather.findall("Say")) == 1, "a repeat is the menu alone"
        assert query(gather.get("action"))["misses"] == "0"
    root = call.press(root, "7")
    assert query(root.find("Gather").get("action"))["misses"] == "1"


def test_invalid_key_explains_and_offers_the_menu_again(phone, settings):
    call = phone()
    root = call.press(call.start(), "7")
    gather = assert_menu(root, settings)
    assert gather.find("Say").text == text(settings, "office_invalid")
    assert query(gather.get("action"))["misses"] == "1"


def test_silence_offers_the_menu_again(phone, settings):
    call = phone()
    root = call.silence(call.start())
    gather = assert_menu(root, settings)
    assert gather.find("Say").text == text(settings, "office_no_input")
    assert query(gather.get("action"))["misses"] == "1"


def test_two_misses_in_total_go_to_reception(phone, settings, session):
    call = phone()
    root = call.silence(call.start())
    root = call.press(root, "*")  # hearing the menu again is no miss
    assert_menu(root, settings)
    root = call.press(root, "0")
    assert root.find("Gather") is None
    assert spoken(root) == " ".join(
        [text(settings, "office_invalid"), text(settings, "office_to_reception")]
    )
    assert_dials_reception(root)
    assert trail(session, call.sid) == ["menu:none", "menu:*", "menu:invalid", "reception"]


def test_a_silent_caller_reaches_reception_after_two_prompts(phone, settings):
    call = phone()
    first = call.start()
    second = call.silence(first)
    assert_menu(second, settings)
    root = call.silence(second)
    assert root.find("Gather") is None
    assert_dials_reception(root)


@pytest.mark.parametrize("settings_overrides", [{"office.max_misses": 1}])
def test_max_misses_is_configurable(phone):
    call = phone()
    root = call.press(call.start(), "6")
    assert_dials_reception(root)


# ------------------------------------------------------------------ departments


def test_open_department_rings_its_numbers_together(phone, settings, session):
    call = phone()
    root = call.press(call.start(), "2")
    assert dialled(root) == SALES
    dial = root.find("Dial")
    assert dial.get("timeout") == "20"
    assert path(dial.get("action")) == "/voice/office/dialed"
    assert query(dial.get("action")) == {"dept": "sales", "lang": "nl"}
    assert spoken(root) == text(
        settings, "department_connecting", department="de afdeling nieuwe klanten en producten"
    )
    assert trail(session, call.sid) == ["menu:2"]


def test_answered_department_call_ends_when_the_conversation_ends(phone, session):
    call = phone()
    root = call.press(call.start(), "1")
    root = call.dial_result(root, "completed", DialCallDuration="95")
    assert top_verbs(root) == ["Hangup"]
    assert callbacks(session) == []
    assert trail(session, call.sid)[-1] == "dial:finance:completed"


def test_caller_hanging_up_while_the_team_rings_ends_cleanly(phone, session):
    call = phone()
    root = call.press(call.start(), "1")
    root = call.dial_result(root, "canceled", CallStatus="completed")
    assert top_verbs(root) == ["Hangup"]
    assert callbacks(session) == []


def test_closed_department_says_when_it_opens_and_offers_voicemail(phone, settings, clock):
    clock.now = FRIDAY_EVENING
    call = phone()
    root = call.press(call.start(), "1")
    assert dialled(root) == []
    assert spoken(root).startswith(
        "Helaas is de financiële afdeling op dit moment gesloten. "
        "We zijn weer bereikbaar op maandag 16 maart om 08:30."
    )
    assert_voicemail(root, "finance", "out")


def test_closed_department_in_english_says_the_moment_in_english(phone, clock):
    clock.now = datetime(2026, 3, 10, 7, 0, tzinfo=AMSTERDAM)
    call = phone()
    root = call.press(call.press(call.start(), "9"), "1")
    assert "We are available again today at 08:30." in spoken(root)


@pytest.mark.parametrize(
    "settings_overrides",
    [{"office.departments.finance.schedule": {"opens": "09:00", "closes": "12:00"}}],
)
def test_department_with_its_own_hours_closes_while_the_others_ring(phone, clock):
    clock.now = datetime(2026, 3, 10, 13, 0, tzinfo=AMSTERDAM)
    call = phone()
    root = call.press(call.start(), "1")
    assert dialled(root) == []
    assert "morgen om 09:00" in spoken(root)
    other = phone()
    assert dialled(other.press(other.start(), "2")) == SALES


def test_override_closed_closes_every_team_at_once(phone, session):
    set_hours_override(session, mode="closed", set_by="test")
    session.commit()
    call = phone()
    root = call.press(call.start(), "2")
    assert dialled(root) == []
    assert "op een later moment" in spoken(root)
    assert_voicemail(root, "sales", "out")


def test_override_open_rings_the_team_on_a_sunday(phone, session, clock):
    clock.now = datetime(2026, 3, 15, 3, 0, tzinfo=AMSTERDAM)
    set_hours_override(session, mode="open", set_by="test")
    session.commit()
    call = phone()
    assert dialled(call.press(call.start(), "1")) == FINANCE


def test_no_answer_offers_voicemail_and_stores_a_callback_request(phone, settings, session):
    call = phone()
    root = call.press(call.start(), "1")
    root = call.dial_result(root, "no-answer")
    assert spoken(root).startswith(
        text(
            settings,
            "department_no_answer",
            department="de financiële afdeling",
            available="op werkdagen van 08:30 tot 17:30",
        )
    )
    assert text(settings, "voicemail_invitation") in spoken(root)
    assert_voicemail(root, "finance", "in")
    thanks = leave_message(call, root)
    assert spoken(thanks) == text(settings, "voicemail_thanks")
    assert top_verbs(thanks)[-1] == "Hangup"
    [request] = callbacks(session)
    assert request.call_sid == call.sid
    assert request.caller == CALLER
    assert request.department == "finance"
    assert request.recording_url.endswith("/Recordings/RE123")
    assert request.recording_sid == "RE123"
    assert request.recording_duration == 14
    assert request.in_hours is True
    assert request.created_at == OPEN_MOMENT
    assert trail(session, call.sid) == ["menu:1", "dial:finance:no-answer", "voicemail:finance"]


def test_retried_voicemail_webhook_stores_one_callback_request(phone, session):
    call = phone()
    root = call.dial_result(call.press(call.start(), "1"), "busy")
    first = leave_message(call, root)
    again = leave_message(call, root)
    assert ET.tostring(first) == ET.tostring(again)
    assert len(callbacks(session)) == 1


def test_voicemail_outside_hours_is_marked_out_of_hours(phone, session, clock):
    clock.now = SATURDAY
    call = phone()
    leave_message(call, call.press(call.start(), "2"))
    [request] = callbacks(session)
    assert (request.department, request.in_hours) == ("sales", False)


@pytest.mark.parametrize(
    "recording",
    [
        {"RecordingUrl": None, "RecordingDuration": None, "RecordingSid": None},
        {"RecordingDuration": "0"},
        {"RecordingUrl": ""},
        {"RecordingUrl": "javascript:alert(1)"},
        # One rule for both lines: Twilio serves recordings over https only.
        {"RecordingUrl": "http://api.twilio.com/x/RE9"},
    ],
)
def test_empty_voicemail_says_so_and_stores_nothing(phone, settings, session, recording):
    call = phone()
    root = call.dial_result(call.press(call.start(), "1"), "no-answer")
    root = call.post(
        root.find("Record").get("action"),
        **{
            "RecordingUrl": "https://api.twilio.com/x/RE9",
            "RecordingSid": "RE9",
            "RecordingDuration": "5",
            **recording,
        },
    )
    assert spoken(root) == text(settings, "voicemail_empty")
    assert top_verbs(root) == ["Say", "Hangup"]
    assert callbacks(session) == []


@pytest.mark.parametrize(
    "status", ["busy", "failed", "no-answer", "canceled", "weird", "", "ü" * 500]
)
def test_any_dial_status_but_completed_offers_voicemail(phone, status):
    call = phone()
    root = call.dial_result(call.press(call.start(), "2"), status)
    assert_voicemail(root, "sales", "in")


# ------------------------------------------------------------------ option 3


@pytest.mark.parametrize(("keys", "lang"), [(["3"], "nl"), (["9", "3"], "en")])
def test_option_3_hands_the_call_to_the_emergency_flow(phone, keys, lang):
    call = phone()
    root = call.start()
    for key in keys:
        root = call.press(root, key)
    assert top_verbs(root) == ["Redirect"]
    redirect = root.find("Redirect")
    assert redirect.get("method") == "POST"
    assert path(redirect.text) == "/voice/emergency/start"
    assert query(redirect.text) == {"via": "office", "lang": lang}


# ------------------------------------------------------------------ option 4


def extension_prompt(call):
    root = call.press(call.start(), "4")
    gather = root.find("Gather")
    assert path(gather.get("action")) == "/voice/office/extension"
    assert gather.get("finishOnKey") == "#"
    assert gather.get("timeout") == "8"
    assert path(root.find("Redirect").text) == "/voice/office/reception"
    return root


def test_known_extension_rings_the_configured_colleague(phone, settings, session):
    call = phone()
    root = call.press(extension_prompt(call), "201")
    assert dialled(root) == [ANNA]
    assert spoken(root) == text(settings, "colleague_connecting", name="Anna de Vries")
    dial = root.find("Dial")
    assert query(dial.get("action")) == {"ext": "201", "lang": "nl"}
    assert dial.get("timeout") == "20"
    assert top_verbs(call.dial_result(root, "completed")) == ["Hangup"]
    assert trail(session, call.sid) == ["menu:4", "ext:201", "dial:ext201:completed"]


def test_colleague_not_answering_goes_to_reception(phone, settings):
    call = phone()
    root = call.dial_result(call.press(extension_prompt(call), "202"), "no-answer")
    assert spoken(root) == text(settings, "colleague_no_answer", name="Pieter Jansen")
    assert_dials_reception(root)


def test_unknown_extension_is_refused_and_asked_again_then_reception(phone, settings):
    call = phone()
    root = extension_prompt(call)
    for attempt in (1, 2):
        root = call.press(root, "999")
        gather = root.find("Gather")
        assert [say.text for say in gather.findall("Say")] == [
            text(settings, "colleague_unknown"),
            text(settings, "colleague_prompt"),
        ]
        assert query(gather.get("action"))["tries"] == str(attempt)
        assert dialled(root) == []
    root = call.press(root, "999")
    assert spoken(root).startswith(text(settings, "colleague_unknown"))
    assert_dials_reception(root)


def test_waiting_at_the_extension_prompt_reaches_reception(phone):
    call = phone()
    assert_dials_reception(call.silence(extension_prompt(call)))


def test_only_the_hash_key_at_the_extension_prompt_reaches_reception(phone):
    call = phone()
    assert_dials_reception(call.press(extension_prompt(call), ""))


@pytest.mark.parametrize(
    "typed",
    [
        "0612345678",
        "+31612345678",
        "31318584931",
        "0031318584931",
        "2010",
        "20",
        "201*",
        "١٢٣",
        "9" * 5000,
        "sip:evil@example.com",
    ],
)
def test_typed_digits_are_never_dialled(phone, settings, typed):
    call = phone()
    root = call.press(extension_prompt(call), typed)
    numbers = dialled(root)
    assert set(numbers) <= configured_numbers(settings)
    assert typed not in numbers and f"+{typed}" not in numbers
    assert numbers == []
    assert root.find("Gather") is not None


def test_option_4_outside_office_hours_offers_reception_voicemail(phone, settings, clock):
    clock.now = SATURDAY
    call = phone()
    root = call.press(call.start(), "4")
    assert spoken(root).startswith(
        text(settings, "office_closed", next_open="op maandag 16 maart om 08:30")
    )
    assert_voicemail(root, "reception", "out")


# ------------------------------------------------------------------ reception


def test_reception_not_answering_offers_voicemail_for_reception(phone, settings, session):
    call = phone()
    root = call.press(call.press(call.start(), "0"), "0")
    assert_dials_reception(root)
    root = call.dial_result(root, "no-answer")
    assert spoken(root).startswith(text(settings, "reception_no_answer"))
    assert_voicemail(root, "reception", "in")
    leave_message(call, root)
    [request] = callbacks(session)
    assert request.department == "reception"
    assert trail(session, call.sid)[-2:] == ["dial:reception:no-answer", "voicemail:reception"]


def test_answered_reception_ends_the_call_afterwards(phone):
    call = phone()
    root = call.press(call.press(call.start(), "0"), "0")
    assert top_verbs(call.dial_result(root, "completed")) == ["Hangup"]


def test_misses_while_the_office_is_closed_offer_a_voicemail(phone, settings, clock):
    clock.now = FRIDAY_EVENING
    call = phone()
    root = call.silence(call.silence(call.start()))
    assert dialled(root) == []
    assert spoken(root).startswith(
        text(settings, "office_no_input")
        + " "
        + text(settings, "office_closed", next_open="op maandag 16 maart om 08:30")
    )
    assert_voicemail(root, "reception", "out")


@pytest.mark.parametrize(
    "settings_overrides",
    [{"office.schedule": {"days": ["mon", "tue", "wed", "thu", "fri", "sat"]}}],
)
def test_office_schedule_of_its_own_keeps_reception_open_on_saturday(phone, clock):
    clock.now = SATURDAY
    call = phone()
    root = call.press(call.press(call.start(), "0"), "0")
    assert_dials_reception(root)
    # Departments without hours of their own follow the office's.
    assert dialled(call.press(phone().start(), "1")) == FINANCE


# ------------------------------------------------------------------ the database failing


def failing(statement: str, error: type = DataError):
    """Return a stand-in service function whose database write fails."""

    def broken(*args, **kwargs):
        raise error(statement, {}, Exception("simulated failure"))

    return broken


def test_a_failing_call_log_write_still_serves_the_whole_menu(phone, settings, monkeypatch):
    monkeypatch.setattr("ivr.calls.record_call_start", failing("INSERT"))
    monkeypatch.setattr("ivr.calls.note_step", failing("UPDATE"))
    call = phone()
    root = call.start()
    assert_menu(root, settings)
    assert dialled(call.press(root, "1")) == FINANCE


def test_a_failing_voicemail_store_still_thanks_the_caller_and_logs_the_recording(
    phone, settings, monkeypatch, caplog
):
    call = phone()
    root = call.dial_result(call.press(call.start(), "1"), "no-answer")
    monkeypatch.setattr("ivr.office.steps.record_callback_request", failing("INSERT"))
    with caplog.at_level("ERROR", logger="ivr.flow"):
        assert spoken(leave_message(call, root)) == text(settings, "voicemail_thanks")
    assert "RE123" in caplog.text and "finance" in caplog.text


def test_an_unreadable_override_follows_the_schedule(phone, monkeypatch):
    monkeypatch.setattr("ivr.flow.get_hours_override", failing("SELECT"))
    call = phone()
    assert dialled(call.press(call.start(), "1")) == FINANCE


def test_an_unreachable_database_leaves_the_caller_to_the_outage_handling(phone, monkeypatch):
    monkeypatch.setattr("ivr.calls.record_call_start", failing("INSERT", OperationalError))
    root = phone().start()
    # Served from configuration alone, as every office caller is while the database is away.
    assert dialled(root) == RECEPTION
    assert spoken(root)


def test_an_unreachable_database_at_the_voicemail_still_answers_the_caller(phone, monkeypatch):
    call = phone()
    root = call.dial_result(call.press(call.start(), "1"), "no-answer")
    monkeypatch.setattr(
        "ivr.office.steps.record_callback_request", failing("INSERT", OperationalError)
    )
    root = leave_message(call, root)
    assert spoken(root)
    assert top_verbs(root)[-1] in ("Hangup", "Dial")
    assert set(dialled(root)) <= set(RECEPTION)


# ------------------------------------------------------------------ odd input


ODD_CALLERS = [
    None,
    "",
    "anonymous",
    "Anonymous",
    "+266696687",
    "Restricted",
    "sip:alice@example.com",
    "client:bob",
    "+3161234567890123456789",
    "x" * 5000,
    "Ünïcødé ☎ 電話",
    "+31 6 1234\x005678",
]


@pytest.mark.parametrize("caller", ODD_CALLERS)
def test_odd_callers_walk_every_office_path(phone, settings, session, caller):
    call = phone(from_=caller)
    root = call.start()
    assert_menu(root, settings)
    root = call.dial_result(call.press(root, "1"), "no-answer")
    assert spoken(leave_message(call, root)) == text(settings, "voicemail_thanks")
    [request] = callbacks(session)
    assert request.caller is None
    other = phone(from_=caller)
    assert dialled(other.press(extension_prompt(other), "201")) == [ANNA]
    assert_dials_reception(other.post("/voice/office/reception?lang=nl"))
    emergency = phone(from_=caller)
    assert path(emergency.press(emergency.start(), "3").find("Redirect").text) == (
        "/voice/emergency/start"
    )


@pytest.mark.parametrize("to", [None, "", "+14155550100", "not a number", "+31318584900" * 50])
def test_unknown_called_number_gets_the_office_menu(client, settings, to):
    from helpers import Call

    call = Call(client, to=to, from_=CALLER)
    if to is None:
        del call.base["To"], call.base["Called"]
    assert_menu(call.start(), settings)


@pytest.mark.parametrize(
    "digits",
    ["12", "99", "#", "*#", "a", "é", "١", "1" * 10000, "\x00", "3; DROP TABLE call_logs"],
)
def test_odd_menu_keys_are_invalid_choices(phone, settings, digits):
    call = phone()
    root = call.press(call.start(), digits)
    gather = assert_menu(root, settings)
    assert gather.find("Say").text == text(settings, "office_invalid")
    assert dialled(root) == []


@pytest.mark.parametrize(
    ("url", "misses_after"),
    [
        ("/voice/office/choice?lang=xx&misses=0", "1"),
        ("/voice/office/choice?lang=nl&misses=-5", "1"),
        ("/voice/office/choice?lang=nl&misses=abc", "1"),
        ("/voice/office/choice?lang=nl&misses=%C2%B2", "1"),
        ("/voice/office/choice", "1"),
        ("/voice/office/choice?lang=" + "e" * 3000 + "&misses=0", "1"),
    ],
)
def test_odd_query_state_is_read_safely(phone, settings, url, misses_after):
    call = phone()
    call.start()
    root = call.post(url, Digits="7")
    gather = assert_menu(root, settings, "nl")
    assert query(gather.get("action"))["misses"] == misses_after


def test_huge_miss_count_goes_to_reception_not_a_500(phone):
    call = phone()
    call.start()
    assert_dials_reception(call.post("/voice/office/choice?misses=" + "9" * 400, Digits="7"))


@pytest.mark.parametrize(
    "url",
    [
        "/voice/office/dialed?dept=nosuch&lang=nl",
        "/voice/office/dialed?dept=reception",
        "/voice/office/dialed",
        "/voice/office/colleague-dialed?ext=555&lang=nl",
        "/voice/office/colleague-dialed",
        "/voice/office/reception-dialed?lang=zz",
    ],
)
def test_odd_dial_actions_still_serve_the_caller(phone, settings, url):
    call = phone()
    call.start()
    root = call.post(url, DialCallStatus="no-answer")
    numbers = dialled(root)
    assert numbers == RECEPTION or root.find("Record") is not None
    assert set(numbers) <= configured_numbers(settings)


@pytest.mark.parametrize(
    "url",
    [
        "/voice/office/voicemail?dept=nosuch&hours=maybe",
        "/voice/office/voicemail",
        "/voice/office/voicemail?dept=" + "x" * 3000,
    ],
)
def test_odd_voicemail_actions_store_for_reception(phone, session, url):
    call = phone()
    call.start()
    root = call.post(
        url, RecordingUrl="https://api.twilio.com/x/RE1", RecordingDuration="7", RecordingSid="RE1"
    )
    assert top_verbs(root) == ["Say", "Hangup"]
    [request] = callbacks(session)
    assert (request.department, request.in_hours) == ("reception", False)


@pytest.mark.parametrize(
    "url",
    [
        "/voice/office/menu?lang=en",
        "/voice/office/choice?lang=nl&misses=0",
        "/voice/office/dialed?dept=finance&lang=nl",
        "/voice/office/extension?lang=nl&tries=0",
        "/voice/office/colleague-dialed?ext=201&lang=nl",
        "/voice/office/reception?lang=nl",
        "/voice/office/reception-dialed?lang=nl",
        "/voice/office/voicemail?dept=finance&lang=nl&hours=in",
    ],
)
@pytest.mark.parametrize("form", ["bare", "huge"])
def test_every_office_webhook_answers_bare_or_huge_requests(client, url, form):
    from helpers import sign

    if form == "bare":
        data = {}
    else:
        # Far beyond every column, yet within the 16 KB a webhook body may carry.
        data = {
            "CallSid": "CA" + "f" * 3000,
            "From": "☎" * 400,
            "To": "x" * 1000,
            "Digits": "1" * 1000,
            "DialCallStatus": "z" * 1000,
            "CallStatus": "ringing",
            "RecordingUrl": "https://" + "r" * 1000,
            "RecordingDuration": "9" * 1000,
        }
    response = client.post(
        url, data=data, headers={"X-Twilio-Signature": sign(PUBLIC_URL + url, data)}
    )
    assert response.status_code == 200
    root = ET.fromstring(response.get_data(as_text=True))
    assert top_verbs(root), "an empty answer would leave the caller in silence"
    # Every answer ends in a way forward: back to us, a ringing phone, or a goodbye.
    assert top_verbs(root)[-1] in ("Redirect", "Dial", "Hangup")


@pytest.mark.parametrize(
    "url",
    ["/voice/office/choice?lang=nl&misses=0", "/voice/office/voicemail?dept=finance&hours=in"],
)
def test_office_webhooks_refuse_unsigned_requests(client, session, url):
    response = client.post(url, data={"CallSid": "CA1", "Digits": "1", "RecordingUrl": "https://x"})
    assert response.status_code == 403
    assert callbacks(session) == []


@pytest.mark.parametrize("held", [True, False], ids=["row-in-session", "one-update"])
def test_a_call_trail_keeps_its_last_steps_and_its_language(app, session, held):
    """A step is appended in place or by one UPDATE; both keep the trail's last MAX_TRAIL chars."""
    from ivr import calls

    sid = "CA" + ("1" if held else "2") * 32
    calls.record_call_start(
        session, sid=sid, line="office", from_number=None, to_number=None, language="nl"
    )
    session.commit()
    if not held:
        session.info.clear()  # as in a later webhook: the session does not hold the row
        session.expunge_all()
    calls.note_step(session, sid=sid, step="menu:1")
    calls.note_step(session, sid=sid, step="lang:en", language="en")
    session.commit()
    session.expunge_all()
    row = session.scalar(select(CallLog).where(CallLog.sid == sid))
    assert (row.choices, row.language) == ("menu:1 lang:en", "en")

    for number in range(calls.MAX_TRAIL // 9 + 5):
        calls.note_step(session, sid=sid, step=f"step:{number:04d}")
        session.commit()
        if held:
            row = calls.get_call(session, sid)
    session.expunge_all()
    row = session.scalar(select(CallLog).where(CallLog.sid == sid))
    assert len(row.choices) == calls.MAX_TRAIL
    assert row.choices.endswith(f"step:{calls.MAX_TRAIL // 9 + 4:04d}")
    assert row.language == "en"
