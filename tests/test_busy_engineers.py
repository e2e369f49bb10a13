"""An engineer on one of the line's calls is not rung for another; everyone busy offers a call-back.

For every emergency call, incident or not. Engineers accept through their screened legs, as
Twilio runs them; a call ends with its final status callback.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from helpers import EMERGENCY_NUMBER, Call, dialled, spoken
from incident_helpers import ANNA, BAS, CARLA, make_engineers, make_organisations, super_phone
from sqlalchemy import select

from tickets.callback_queue import QueuedCallBack
from tickets.models import TicketCall


@pytest.fixture
def people(session, clock):
    make_organisations(session, 8)
    return make_engineers(session, clock.now)


def urgent_call(phone, n: int, key: str = "2"):
    """Organisation n's super user calls about an urgent bug; return the call and its TwiML."""
    call = phone(to=EMERGENCY_NUMBER, from_=super_phone(n))
    return call, call.press(call.start(), key)


def accept(client, caller: Call, root, engineer: str):
    """Let `engineer`'s screened leg of the <Dial> in `root` press 1; return the accept TwiML."""
    [number] = [n for n in root.find("Dial") if (n.text or "").strip() == engineer]
    leg = Call(client, to=engineer, from_=caller.base["From"], sid=f"CA{uuid.uuid4().hex}")
    leg.base.update(Direction="outbound-dial", ParentCallSid=caller.sid, CallStatus="in-progress")
    screening = leg.post(number.get("url"))
    return leg.press(screening, "1")


def bridged(client, phone, n: int, engineer: str) -> Call:
    """Organisation n calls and `engineer` accepts: they are on the phone until it ends."""
    call, root = urgent_call(phone, n)
    assert engineer in dialled(root)
    accept(client, call, root, engineer)
    call.dial_result(root, "completed", DialBridged="true", DialCallDuration="1")
    return call


def test_a_busy_engineer_is_not_rung_for_another_call(client, phone, people):
    bridged(client, phone, 1, ANNA)
    _, root = urgent_call(phone, 2)
    assert dialled(root) == [BAS]


def test_with_level_1_busy_level_2_rings_at_once(client, phone, people):
    bridged(client, phone, 1, ANNA)
    bridged(client, phone, 2, BAS)
    _, root = urgent_call(phone, 3)
    assert dialled(root) == [CARLA]
    assert "level=2" in root.find("Dial").get("action")


def test_everyone_busy_offers_a_call_back_and_rings_nobody(client, phone, session, people):
    for n, engineer in ((1, ANNA), (2, BAS), (3, CARLA)):
        bridged(client, phone, n, engineer)
    call, root = urgent_call(phone, 4)
    number = session.scalar(select(TicketCall).where(TicketCall.sid == call.sid)).ticket.number
    assert dialled(root) == []
    assert spoken(root) == (
        "Ticketnummer " + " ".join(number) + ". Al onze engineers zijn nu in gesprek. "
        "Wilt u teruggebeld worden zodra er een vrij is, toets 2. "
        "Of blijf aan de lijn om een bericht in te spreken."
    )
    assert "opgenomen" not in spoken(root)  # no recording notice: nothing is dialled
    root = call.press(root, "2")
    assert spoken(root).startswith("We bellen u terug op dit nummer")
    call.hang_up()
    [request] = session.scalars(select(QueuedCallBack)).all()
    assert (request.number, request.status) == (super_phone(4), "waiting")


def test_everyone_busy_and_staying_on_the_line_leaves_a_voicemail(client, phone, people):
    for n, engineer in ((1, ANNA), (2, BAS), (3, CARLA)):
        bridged(client, phone, n, engineer)
    call, root = urgent_call(phone, 4)
    root = call.silence(root)
    assert spoken(root).startswith("Spreek na de toon uw naam en het probleem in.")
    assert root.find("Record") is not None


def test_an_engineer_is_free_again_once_the_call_ends(client, phone, people):
    first = bridged(client, phone, 1, ANNA)
    first.hang_up()
    _, root = urgent_call(phone, 2)
    assert sorted(dialled(root)) == sorted([ANNA, BAS])


def test_a_call_without_an_end_for_hours_no_longer_counts(client, phone, clock, people):
    bridged(client, phone, 1, ANNA)  # its end never arrives
    clock.now += timedelta(hours=3, minutes=1)  # emergency.busy_stale_minutes is 180
    _, root = urgent_call(phone, 2)
    assert sorted(dialled(root)) == sorted([ANNA, BAS])


def test_the_escalation_passes_busy_levels_by_and_asks_again_next_round(
    client, phone, session, people
):
    first = bridged(client, phone, 1, ANNA)
    second = bridged(client, phone, 2, BAS)
    call, root = urgent_call(phone, 3)
    assert dialled(root) == [CARLA]  # round 1: level 1 busy, level 2
    first.hang_up()
    second.hang_up()
    root = call.dial_result(root, "no-answer")
    # Round 2: level 1 is free again and rings; nobody was skipped for good.
    assert sorted(dialled(root)) == sorted([ANNA, BAS])
    assert "round=2" in root.find("Dial").get("action")


def test_when_the_rest_of_the_escalation_is_busy_the_caller_is_offered_a_call_back(
    client, phone, people
):
    bridged(client, phone, 1, ANNA)
    bridged(client, phone, 2, BAS)
    call, root = urgent_call(phone, 3)
    assert dialled(root) == [CARLA]
    root = call.dial_result(root, "no-answer")
    assert dialled(root) == [CARLA]  # round 2: level 1 still busy, Carla once more
    root = call.dial_result(root, "no-answer")
    assert "Er is op dit moment geen engineer beschikbaar" in spoken(root)  # nobody left
    # Level 1 busy, level 2 gone busy meanwhile: said so at once, with the call-back offer.
    bridged(client, phone, 4, CARLA)
    other, root = urgent_call(phone, 5)
    assert dialled(root) == []
    assert "Al onze engineers zijn nu in gesprek." in spoken(root)


def test_a_leg_of_an_engineer_who_took_another_call_meanwhile_hangs_up(client, phone, people):
    waiting, ringing = urgent_call(phone, 1)  # rings Anna and Bas
    bridged(client, phone, 2, ANNA)  # Anna takes another call first
    [number] = [n for n in ringing.find("Dial") if n.text.strip() == ANNA]
    leg = Call(client, to=ANNA, from_=super_phone(1))
    leg.base.update(Direction="outbound-dial", ParentCallSid=waiting.sid)
    assert [verb.tag for verb in leg.post(number.get("url"))] == ["Hangup"]


def test_the_engineer_who_accepted_is_noted_with_their_phone(client, phone, session, people):
    call = bridged(client, phone, 1, ANNA)
    row = session.scalar(select(TicketCall).where(TicketCall.sid == call.sid))
    session.refresh(row)
    assert (row.answered_by, row.answered_by_number) == ("Anna Jansen", ANNA)


@pytest.mark.parametrize(
    "settings_overrides",
    [{"emergency.engineers": [{"name": "Eva", "number": "+31620000011"},
                              {"name": "Femke", "number": "+31620000012"}]}],
)  # fmt: skip
def test_without_a_rota_the_configured_engineers_are_left_out_when_busy(
    client, phone, session, clock
):
    make_organisations(session, 3)
    bridged(client, phone, 1, "+31620000011")
    call, root = urgent_call(phone, 2)
    assert dialled(root) == ["+31620000012"]  # Eva is on a call: only Femke rings
    accept(client, call, root, "+31620000012")
    _, root = urgent_call(phone, 3)
    assert dialled(root) == [] and "Al onze engineers zijn nu in gesprek." in spoken(root)


@pytest.mark.parametrize(
    "settings_overrides",
    [{"emergency.engineers": [{"name": "Eva", "number": "+31620000011"},
                              {"name": "Femke", "number": "+31620000012"}]}],
)  # fmt: skip
def test_engineers_who_all_took_other_calls_while_ringing_leave_the_call_back_offer(
    client, phone, session, clock
):
    make_organisations(session, 3)
    waiting, ringing = urgent_call(phone, 1)  # rings Eva and Femke
    assert sorted(dialled(ringing)) == ["+31620000011", "+31620000012"]
    bridged(client, phone, 2, "+31620000011")  # both answer someone else first
    bridged(client, phone, 3, "+31620000012")
    root = waiting.dial_result(ringing, "no-answer")
    # Nobody failed to answer: everyone is on a call, so the caller hears that, not voicemail.
    assert dialled(root) == [] and "Al onze engineers zijn nu in gesprek." in spoken(root)
    assert root.find("Record") is None


def test_when_the_last_round_ends_with_everyone_on_a_call_the_caller_is_offered_a_call_back(
    client, phone, people
):
    first = bridged(client, phone, 1, ANNA)
    call, root = urgent_call(phone, 2)
    assert dialled(root) == [BAS]
    root = call.dial_result(root, "no-answer")  # Bas does not answer: Carla, level 2
    assert dialled(root) == [CARLA]
    root = call.dial_result(root, "no-answer")
    assert dialled(root) == [BAS]  # round 2
    root = call.dial_result(root, "no-answer")
    assert dialled(root) == [CARLA]  # the last step of the escalation
    bridged(client, phone, 3, BAS)
    bridged(client, phone, 4, CARLA)
    root = call.dial_result(root, "no-answer")
    assert dialled(root) == [] and "Al onze engineers zijn nu in gesprek." in spoken(root)
    first.hang_up()
