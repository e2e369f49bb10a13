from helpers import PUBLIC_URL, parse_twiml, sign
from sqlalchemy import select

from ivr.models import CallLog


def test_unsigned_request_is_refused_and_changes_nothing(client, session):
    response = client.post("/voice/status", data={"CallSid": "CA1", "CallStatus": "completed"})
    assert response.status_code == 403
    assert session.scalar(select(CallLog)) is None


def test_wrongly_signed_request_is_refused(client):
    data = {"CallSid": "CA1", "To": "+31318584900"}
    signature = sign(PUBLIC_URL + "/voice/incoming", {**data, "From": "+31612345678"})
    response = client.post("/voice/incoming", data=data, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403


def test_signature_over_another_host_is_refused(client):
    data = {"CallSid": "CA1", "To": "+31318584900"}
    signature = sign("https://attacker.example/voice/incoming", data)
    response = client.post("/voice/incoming", data=data, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403


def test_signed_incoming_call_gets_twiml(phone):
    root = phone().start()
    assert next(root.iter("Say"), None) is not None


def test_health_reports_database(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "database": "ok",
        # No channel is set up in the tests' settings, nor the account SID.
        "paging": "cannot_send",
        "recordings": "cannot_play",
        "messages": {"sender": "ok", "waiting": 0, "oldest_waiting_seconds": 0},
    }


def test_status_callback_records_end_and_never_goes_back(phone, session):
    call = phone()
    call.start()
    call.hang_up(duration="42")
    late = call.post_raw("/voice/status", CallStatus="in-progress", SequenceNumber="3")
    assert late.status_code == 204
    log = session.scalar(select(CallLog).where(CallLog.sid == call.sid))
    session.refresh(log)
    assert log.status == "completed"
    assert log.duration == 42


def test_fallback_rings_reception_for_office(phone):
    call = phone()
    root = call.post("/voice/fallback", ErrorCode="11200")
    assert [n.text for n in root.iter("Number")] == ["+31318584901"]


def test_parse_twiml_rejects_non_xml(client):
    response = client.get("/health")
    try:
        parse_twiml(response)
    except AssertionError:
        return
    raise AssertionError("parse_twiml accepted JSON")
