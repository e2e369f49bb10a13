"""Toll fraud: whatever a caller keys in, on any line, only configured numbers are ever dialled."""

from helpers import EMERGENCY_0900, EMERGENCY_NUMBER, OFFICE_NUMBER, Call
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from resilience_helpers import (
    SUPER_PHONE,
    SUPER_PIN,
    USER_PHONE,
    DatabaseOutage,
    assert_safe_twiml,
    configured_numbers,
    start_afresh,
)

from core.db import db

MAX_STEPS = 14

# What a fraudster would type: premium and foreign numbers, in every usual notation.
TYPED_NUMBERS = [
    "09001234567",
    "09001234567#",
    "0031900123456#",
    "+31900123456",
    "00441234567890#",
    "004412345678901234#",
    "0612345678#",
    "*0031612345678#",
    "31318584941#",  # an engineer's number without the plus: still not a dial of typed digits
]
key_presses = st.one_of(
    st.sampled_from(["1", "2", "3", "4", "9", "*", "#", "0", "201#", "202#", "999#"]),
    st.sampled_from(TYPED_NUMBERS),
    st.just(SUPER_PIN + "#"),
    st.text("0123456789*#", min_size=1, max_size=20),
)
dial_outcomes = st.sampled_from(["completed", "no-answer", "busy", "failed", "canceled"])
SPOKEN_NUMBERS = ["bel 0900 1234567", "nul negen nul nul 1 2 3 4 5 6 7", "alles ligt plat", ""]
spoken_numbers = st.sampled_from(SPOKEN_NUMBERS)


def gather_action(root, current: str) -> str:
    gather = root.find("Gather")
    return gather.get("action") or current


def walk(call: Call, root, data, settings) -> list[str]:
    """Follow the call where Twilio would take it, with keys drawn at every question."""
    current = "/voice/incoming"
    typed: list[str] = []
    for _ in range(MAX_STEPS):
        assert_safe_twiml(root, settings)
        gather, dial = root.find("Gather"), root.find("Dial")
        record, redirect = root.find("Record"), root.find("Redirect")
        if gather is not None:
            choice = data.draw(st.sampled_from(["press", "press", "press", "silence", "speak"]))
            action = gather_action(root, current)
            if choice == "press":
                keys = data.draw(key_presses, label="keys")
                typed.append(keys)
                current, root = action, call.post(action, Digits=keys.rstrip("#"))
            elif choice == "speak" and "speech" in (gather.get("input") or ""):
                text = data.draw(spoken_numbers)
                current, root = action, call.post(action, SpeechResult=text, Confidence="0.8")
            elif gather.get("actionOnEmptyResult") == "true":
                current, root = action, call.post(action)
            elif redirect is not None:
                current = redirect.text.strip()
                root = call.post(current)
            else:
                break
        elif dial is not None:
            for leg, number in enumerate(dial.iter("Number")):
                url = number.get("url")
                if url:
                    screen = engineer_post(call, url, number.text, leg)
                    assert_safe_twiml(screen, settings)
                    if screen.find("Gather") is not None:
                        keys = data.draw(key_presses, label="engineer keys")
                        answer = engineer_post(
                            call, gather_action(screen, url), number.text, leg, Digits=keys
                        )
                        assert_safe_twiml(answer, settings)
            action = dial.get("action")
            if not action:
                break
            outcome = data.draw(dial_outcomes, label="dial outcome")
            bridged = "true" if outcome == "completed" else "false"
            current, root = action, call.post(action, DialCallStatus=outcome, DialBridged=bridged)
        elif record is not None and record.get("action"):
            current = record.get("action")
            root = call.post(
                current, RecordingUrl="https://api.twilio.com/rec/RE1", RecordingDuration="5"
            )
        elif redirect is not None:
            current = redirect.text.strip()
            root = call.post(current)
        else:
            break
    assert_safe_twiml(root, settings)
    return typed


def engineer_post(call: Call, url: str, number: str, leg: int, **params):
    """Post a webhook of an engineer's leg, as Twilio does for `<Number url>`."""
    return call.post(
        url,
        CallSid=f"CA{leg:032x}",
        ParentCallSid=call.sid,
        Direction="outbound-dial",
        To=number.strip(),
        CallStatus="in-progress",
        **params,
    )


CALLS = hypothesis_settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
lines = st.sampled_from([OFFICE_NUMBER, EMERGENCY_NUMBER, EMERGENCY_0900])
callers = st.sampled_from([SUPER_PHONE, USER_PHONE, "+31622222222", "anonymous"])


@CALLS
@given(data=st.data(), to=lines, caller=callers)
def test_no_key_sequence_on_any_line_dials_a_typed_number(
    app, client, session, settings, clock, data, to, caller
):
    start_afresh(app, session)
    call = Call(client, to=to, from_=caller)
    walk(call, call.start(), data, settings)


@hypothesis_settings(CALLS, max_examples=12)
@given(data=st.data(), to=lines, caller=callers)
def test_no_key_sequence_dials_a_typed_number_while_the_database_is_down(
    app, client, session, settings, clock, data, to, caller
):
    start_afresh(app, session)
    outage = DatabaseOutage().start()
    try:
        call = Call(client, to=to, from_=caller)
        walk(call, call.start(), data, settings)
    finally:
        outage.end()
        db.session.remove()


def test_typed_numbers_are_not_configured(settings):
    allowed = configured_numbers(settings)
    for typed in TYPED_NUMBERS:
        assert typed.rstrip("#") not in allowed


def test_a_number_spoken_at_the_description_step_of_an_older_call_is_never_dialled(
    app, client, session, settings, clock
):
    # The flow asks for no description now, but calls asked before an upgrade still post one.
    start_afresh(app, session)
    call = Call(client, to=EMERGENCY_NUMBER, from_=SUPER_PHONE)
    call.start()
    for text in SPOKEN_NUMBERS:
        root = call.post(
            "/voice/emergency/description?lang=nl", SpeechResult=text, Confidence="0.8"
        )
        assert_safe_twiml(root, settings)
        assert root.find("Dial") is not None
