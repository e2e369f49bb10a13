"""Helpdesk events' security: start-up refuses a bad receiver URL or secret in one line naming
the key; at send time a name that resolves to this machine or a private network is refused
unless allowed; redirects are not followed; /metrics labels carry names, never URLs; the
redelivery button is for admins, with CSRF, on the audit trail."""

from __future__ import annotations

import pytest
from helpdesk_receiver import HelpdeskReceiver, new_secret
from helpers import EMERGENCY_NUMBER, build_settings
from prometheus_client import REGISTRY
from sqlalchemy import select

from core.settings import ConfigError
from ivr.messaging.helpdesk import tick
from ivr.messaging.webhooks import is_public
from tickets.helpdesk.models import HelpdeskDelivery
from tickets.models import AuditEvent, Contact, ContactPhone, Organization

SECRET = new_secret()
CALLER = "+31611110000"


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"IVR_HELPDESK_WEBHOOK_URL": "ftp://helpdesk.example/x"}, "helpdesk.url"),
        ({"IVR_HELPDESK_WEBHOOK_URL": "http://helpdesk.example/x"}, "helpdesk.url"),
        ({"IVR_HELPDESK_WEBHOOK_URL": "https://127.0.0.1/x"}, "helpdesk.url"),
        ({"IVR_HELPDESK_WEBHOOK_URL": "https://10.1.2.3/x"}, "helpdesk.url"),
        ({"IVR_HELPDESK_WEBHOOK_URL": "https://169.254.169.254/latest"}, "helpdesk.url"),
        ({"IVR_HELPDESK_WEBHOOK_URL": "https://[::1]:8443/x"}, "helpdesk.url"),
        ({"IVR_HELPDESK_WEBHOOK_URL": "https://localhost/x"}, "helpdesk.url"),
        ({"IVR_HELPDESK_WEBHOOK_URL": "https://helpdesk.example/x"}, "helpdesk.secret"),
        ({"IVR_HELPDESK_WEBHOOK_SECRET": "whsec_c2hvcnQ="}, "helpdesk.secret"),
        ({"IVR_HELPDESK_WEBHOOK_SECRET": "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t"}, "helpdesk.secret"),
    ],
)
def test_a_bad_receiver_stops_start_up_with_one_line_naming_the_key(cli, environ, key):
    environ = {"IVR_HELPDESK_WEBHOOK_URL": "https://helpdesk.example/x", **environ}
    if "IVR_HELPDESK_WEBHOOK_SECRET" not in environ and key != "helpdesk.secret":
        environ["IVR_HELPDESK_WEBHOOK_SECRET"] = SECRET
    result = cli("serve", env=environ)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and f"{key}:" in lines[0], result.output
    assert "s3cr3t" not in result.output and SECRET not in result.output


def test_a_listed_receiver_is_checked_too_and_named_by_its_place(tmp_path):
    hooks = [{"name": "zendesk", "url": "https://192.168.1.20/hook", "secret": SECRET}]
    with pytest.raises(ConfigError, match=r"helpdesk\.webhooks\.0\.url: points at this machine"):
        build_settings("sqlite://", tmp_path, **{"helpdesk.webhooks": hooks})
    allowed = [{**hooks[0], "allow_private_network": True}]
    settings = build_settings("sqlite://", tmp_path, **{"helpdesk.webhooks": allowed})
    assert [hook.name for hook in settings.helpdesk.receivers] == ["zendesk"]


def test_a_listed_receivers_secret_comes_from_its_environment_variable(tmp_path):
    from core.settings import load_settings

    hooks = [{"name": "my-desk", "url": "https://desk.example/hook", "secret": "placeholder"}]
    environ = {
        "TWILIO_AUTH_TOKEN": "test-twilio-auth-token-0123456789",
        "IVR_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "IVR_HELPDESK_WEBHOOK_SECRET_MY_DESK": SECRET,
    }
    settings = load_settings(environ=environ, overrides={"helpdesk.webhooks": hooks})
    assert settings.helpdesk.receivers[0].secrets == [SECRET]


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.7", False),
        ("172.16.5.4", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),  # noqa: S104 - an address under test, not one we bind
        ("::1", False),
        ("fd00::1", False),
        ("fe80::1", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
    ],
)
def test_only_public_addresses_are_public(address, public):
    assert is_public(address) is public


@pytest.fixture
def receiver():
    server = HelpdeskReceiver(SECRET).start()
    yield server
    server.stop()


@pytest.fixture
def people(session, clock):
    acme = Organization(name="Acme Uitzendbureau")
    sanne = Contact(organization=acme, name="Sanne Visser", email="s@a.example", role="super_user")
    sanne.phones.append(ContactPhone(number=CALLER))
    session.add(acme)
    session.commit()


def emergency_call(phone) -> None:
    call = phone(to=EMERGENCY_NUMBER, from_=CALLER)
    call.press(call.start(), "1")
    call.hang_up(duration="30")


def failures(reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "ivr_helpdesk_delivery_failures_total",
        {"receiver": "desk", "type": "ticket.created", "reason": reason, "final": "false"},
    )
    return value or 0.0


class TestSendTime:
    @pytest.fixture
    def settings_overrides(self, receiver):
        # "127.1" is no address the settings can read, so they let it through; it resolves to
        # 127.0.0.1, and only the check at send time stands between it and this machine.
        port = receiver.server.server_port
        hooks = [{"name": "desk", "url": f"https://127.1:{port}/hook", "secret": SECRET}]
        return {"helpdesk.webhooks": hooks}

    @pytest.mark.wall_clock
    def test_a_name_that_resolves_to_loopback_is_refused_when_sending(
        self, app, session, phone, people, receiver
    ):
        before = failures("refused_address")
        emergency_call(phone)
        report = tick(app)

        assert report.retrying and receiver.attempts == []
        session.expire_all()
        row = session.scalars(select(HelpdeskDelivery).order_by(HelpdeskDelivery.id)).first()
        assert "127.1 resolves to 127.0.0.1" in row.last_error
        assert failures("refused_address") == before + 1


class TestRedirects:
    @pytest.fixture
    def elsewhere(self):
        server = HelpdeskReceiver(SECRET).start()
        yield server
        server.stop()

    @pytest.fixture
    def settings_overrides(self, receiver):
        # A token in the query, as some helpdesks want it: support's page never shows it.
        hook = {"name": "desk", "url": f"{receiver.url}?token=sekrit-query", "secret": SECRET}
        return {"helpdesk.webhooks": [{**hook, "allow_private_network": True}]}

    @pytest.mark.wall_clock
    def test_a_redirect_is_not_followed(self, app, session, phone, people, receiver, elsewhere):
        receiver.answers, receiver.location = [307], elsewhere.url
        emergency_call(phone)
        tick(app)

        assert elsewhere.attempts == []
        session.expire_all()
        row = session.scalars(select(HelpdeskDelivery).order_by(HelpdeskDelivery.id)).first()
        assert (row.status, row.last_status) == ("pending", 307)

    @pytest.mark.wall_clock
    def test_metrics_count_by_receiver_name_and_never_show_its_url(
        self, app, session, clock, phone, people, receiver, client
    ):
        from datetime import timedelta

        receiver.answers = [503]
        emergency_call(phone)
        tick(app)
        clock.now += timedelta(minutes=2)
        tick(app)
        text = client.get("/metrics").get_data(as_text=True)

        lines = [line for line in text.splitlines() if line.startswith("ivr_helpdesk_")]
        assert any('reason="http_5xx"' in line and 'receiver="desk"' in line for line in lines)
        assert any(line.startswith("ivr_helpdesk_deliveries_total{") for line in lines)
        assert not any("127.0.0.1" in line or "sekrit" in line or "whsec" in line for line in lines)

    @pytest.mark.wall_clock
    def test_redelivery_is_for_admins_with_a_csrf_token_and_on_the_trail(
        self, app, session, phone, people, receiver, client
    ):
        from support_helpers import make_staff, page_token, sign_in

        emergency_call(phone)
        tick(app)
        session.expire_all()
        row = session.scalars(select(HelpdeskDelivery).order_by(HelpdeskDelivery.id)).first()
        path = f"/support/settings/helpdesk/deliveries/{row.id}/redeliver"
        make_staff(session, email="agent@otys.test", role="agent")
        make_staff(session, email="admin@otys.test", role="admin")

        sign_in(client, "agent@otys.test")
        assert client.post(path, data={"csrf_token": page_token(client)}).status_code == 403
        client.post("/support/logout", data={"csrf_token": page_token(client)})
        sign_in(client, "admin@otys.test")
        page = client.get("/support/settings").get_data(as_text=True)
        assert "desk" in page and "Redeliver" in page and "sekrit-query" not in page
        assert client.post(path).status_code == 400  # no CSRF token
        assert client.post(path, data={"csrf_token": page_token(client)}).status_code == 303
        tick(app)

        assert receiver.duplicates == 1  # the same webhook-id, so the receiver knows it
        trail = session.scalars(select(AuditEvent).where(AuditEvent.action == "helpdesk_redeliver"))
        assert [audit.actor for audit in trail] == ["admin@otys.test"]


@pytest.mark.wall_clock
def test_ivr_helpdesk_test_sends_a_signed_test_event_and_says_how_it_went(
    cli, receiver, tmp_path, monkeypatch
):
    from real_servers import write_config

    config = write_config(tmp_path)
    text = config.read_text().replace(
        "allow_private_network = false", "allow_private_network = true", 1
    )
    config.write_text(text)
    environ = {
        "IVR_CONFIG": str(config),
        "IVR_HELPDESK_WEBHOOK_URL": receiver.url,
        "IVR_HELPDESK_WEBHOOK_SECRET": SECRET,
    }
    result = cli("helpdesk", "test", env=environ)
    assert result.exit_code == 0, result.output
    assert "helpdesk (http://127.0.0.1:" in result.output and "delivered, HTTP 200" in result.output
    assert receiver.types() == ["helpdesk.test"]

    receiver.answers = [500]
    failed = cli("helpdesk", "test", env=environ)
    assert failed.exit_code == 1 and "not delivered: HTTP 500" in failed.output


def test_ivr_helpdesk_secret_prints_a_secret_the_settings_take(cli, tmp_path):
    result = cli("helpdesk", "secret")
    secret = result.output.strip()
    settings = build_settings(
        "sqlite://",
        tmp_path,
        **{"helpdesk.url": "https://desk.example/hook", "helpdesk.secret": secret},
    )
    assert settings.helpdesk.receivers[0].secrets == [secret]
