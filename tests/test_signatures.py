import pytest
from helpers import AUTH_TOKEN, PUBLIC_URL, build_settings, sign
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from core.settings import ConfigError

FORM = {
    "CallSid": "CA" + "1" * 32,
    "AccountSid": "AC" + "0" * 32,
    "From": "+31612345678",
    "To": "+31318584900",
    "CallStatus": "ringing",
    "Direction": "inbound",
}

NO_PUBLIC_URL = {"public_url": ""}
BEHIND_PROXY = {"public_url": "", "trusted_proxies": ["10.0.0.0/8", "::1"]}


def post(client, path, signed_url, *, form=FORM, headers=None, remote="127.0.0.1", base=None):
    """Post `form` to `path`, signed as Twilio would sign `signed_url`."""
    signature = sign(signed_url, form)
    return client.post(
        path,
        data=form,
        headers={"X-Twilio-Signature": signature, **(headers or {})},
        environ_base={"REMOTE_ADDR": remote},
        base_url=base or "http://localhost",
    )


def test_behind_a_tls_proxy_the_configured_public_url_is_what_counts(client):
    internal = "http://10.0.0.5:8000"
    public = post(client, "/voice/incoming", PUBLIC_URL + "/voice/incoming", base=internal)
    assert public.status_code == 200
    seen = post(client, "/voice/incoming", internal + "/voice/incoming", base=internal)
    assert seen.status_code == 403


@pytest.mark.parametrize("settings_overrides", [{"public_url": "https://ivr.example.test:8443"}])
def test_an_explicit_port_in_the_public_url_is_honoured(client):
    good = post(client, "/voice/incoming", "https://ivr.example.test:8443/voice/incoming")
    assert good.status_code == 200
    # twilio's validator also accepts the URL without its port (Twilio is inconsistent there),
    portless = post(client, "/voice/incoming", "https://ivr.example.test/voice/incoming")
    assert portless.status_code == 200
    # but never another port.
    other = post(client, "/voice/incoming", "https://ivr.example.test:9443/voice/incoming")
    assert other.status_code == 403


@pytest.mark.parametrize("settings_overrides", [{"public_url": "https://ivr.example.test:443"}])
def test_a_default_port_is_accepted_with_or_without_it_in_the_signature(client):
    with_port = post(client, "/voice/incoming", "https://ivr.example.test:443/voice/incoming")
    without = post(client, "/voice/incoming", "https://ivr.example.test/voice/incoming")
    assert (with_port.status_code, without.status_code) == (200, 200)


def test_the_query_string_is_part_of_what_is_signed(client):
    path = "/voice/office/menu?lang=en&misses=1"
    assert post(client, path, PUBLIC_URL + path).status_code == 200
    assert post(client, path, PUBLIC_URL + "/voice/office/menu").status_code == 403
    swapped = PUBLIC_URL + "/voice/office/menu?misses=1&lang=en"
    assert post(client, path, swapped).status_code == 403
    tampered = "/voice/office/menu?lang=en&misses=0"
    assert post(client, tampered, PUBLIC_URL + path).status_code == 403


def test_percent_encoding_in_our_urls_is_kept_as_twilio_sent_it(client):
    path = "/voice/fallback/screen?caller=%2B31612345678"
    form = {**FORM, "Direction": "outbound-dial", "ParentCallSid": "CA" + "2" * 32}
    assert post(client, path, PUBLIC_URL + path, form=form).status_code == 200
    decoded = PUBLIC_URL + "/voice/fallback/screen?caller=+31612345678"
    assert post(client, path, decoded, form=form).status_code == 403


def test_the_raw_request_uri_from_the_server_is_used_when_present(client):
    path = "/voice/fallback/screen?caller=%2B31612345678"
    form = {**FORM, "Direction": "outbound-dial"}
    response = client.post(
        path,
        data=form,
        headers={"X-Twilio-Signature": sign(PUBLIC_URL + path, form)},
        environ_overrides={"RAW_URI": path},
    )
    assert response.status_code == 200


def test_repeated_parameters_are_all_signed(client):
    form = MultiDict(list(FORM.items()) + [("StirVerstat", "TN-Validation-Passed-A")])
    form.add("StirVerstat", "TN-Validation-Passed-B")
    url = PUBLIC_URL + "/voice/incoming"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    response = client.post("/voice/incoming", data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200
    only_first = sign(url, form.to_dict(flat=True))
    response = client.post("/voice/incoming", data=form, headers={"X-Twilio-Signature": only_first})
    assert response.status_code == 403


@pytest.mark.parametrize("settings_overrides", [BEHIND_PROXY])
def test_proxy_headers_from_a_trusted_proxy_give_the_public_url(client):
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "ivr.example.com"}
    url = "https://ivr.example.com/voice/incoming"
    response = post(client, "/voice/incoming", url, headers=headers, remote="10.1.2.3")
    assert response.status_code == 200


@pytest.mark.parametrize("settings_overrides", [BEHIND_PROXY])
def test_a_forwarded_port_is_part_of_the_public_url(client):
    headers = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "ivr.example.com",
        "X-Forwarded-Port": "8443",
    }
    url = "https://ivr.example.com:8443/voice/incoming"
    response = post(client, "/voice/incoming", url, headers=headers, remote="10.1.2.3")
    assert response.status_code == 200
    response = post(
        client,
        "/voice/incoming",
        "https://ivr.example.com:9443/voice/incoming",
        headers=headers,
        remote="10.1.2.3",
    )
    assert response.status_code == 403


@pytest.mark.parametrize("settings_overrides", [BEHIND_PROXY])
def test_the_first_of_several_forwarded_values_is_the_one_twilio_used(client):
    headers = {
        "X-Forwarded-Proto": "https, http",
        "X-Forwarded-Host": "ivr.example.com, lb.internal",
    }
    url = "https://ivr.example.com/voice/incoming"
    assert post(client, "/voice/incoming", url, headers=headers, remote="::1").status_code == 200


@pytest.mark.parametrize("settings_overrides", [BEHIND_PROXY])
def test_proxy_headers_from_anyone_else_are_ignored(client):
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "ivr.example.com"}
    url = "https://ivr.example.com/voice/incoming"
    forged = post(client, "/voice/incoming", url, headers=headers, remote="203.0.113.9")
    assert forged.status_code == 403
    direct = post(
        client, "/voice/incoming", "http://localhost/voice/incoming", headers=headers, remote="x"
    )
    assert direct.status_code == 200


@pytest.mark.parametrize("settings_overrides", [BEHIND_PROXY])
@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-Proto": "javascript", "X-Forwarded-Host": "ivr.example.com"},
        {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example/x?"},
        {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "a b"},
        {"X-Forwarded-Proto": "https", "X-Forwarded-Port": "44x"},
    ],
)
def test_odd_proxy_headers_fall_back_to_the_request_itself(client, headers):
    response = post(
        client,
        "/voice/incoming",
        "http://localhost/voice/incoming",
        headers=headers,
        remote="10.1.2.3",
    )
    assert response.status_code == 200


def test_with_a_public_url_proxy_headers_never_count(client):
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "attacker.example"}
    response = post(
        client,
        "/voice/incoming",
        "https://attacker.example/voice/incoming",
        headers=headers,
        remote="10.1.2.3",
    )
    assert response.status_code == 403


def test_every_voice_webhook_refuses_missing_and_wrong_signatures(app, client):
    paths = sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/voice/") and "POST" in rule.methods and "<" not in rule.rule
    )
    assert "/voice/fallback" in paths and "/voice/outage/dialled" in paths
    for path in paths:
        assert client.post(path, data=FORM).status_code == 403, path
        wrong = sign(PUBLIC_URL + path, {**FORM, "From": "+31600000000"})
        response = client.post(path, data=FORM, headers={"X-Twilio-Signature": wrong})
        assert response.status_code == 403, path


def test_a_signature_made_with_another_token_is_refused(client):
    url = PUBLIC_URL + "/voice/incoming"
    other = RequestValidator("another-token-0123456789").compute_signature(url, FORM)
    response = client.post("/voice/incoming", data=FORM, headers={"X-Twilio-Signature": other})
    assert response.status_code == 403


def test_a_trusted_proxy_that_is_not_an_address_stops_start_up(tmp_path, database_url):
    with pytest.raises(ConfigError, match="trusted_proxies"):
        build_settings(database_url, tmp_path, trusted_proxies=["proxy.local"])


def test_serve_refuses_to_listen_beyond_loopback_believing_any_host(cli):
    result = cli("serve", "--host", "192.0.2.10", "--port", "1", env={"IVR_PUBLIC_URL": ""})
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "public_url" in result.stderr and "192.0.2.10" in result.stderr


def test_gunicorn_believes_forwarded_headers_only_from_configured_proxies(settings):
    from app.server import check_exposure, gunicorn_options

    assert (
        gunicorn_options(settings, host=None, port=None, workers=None)["forwarded_allow_ips"] == ""
    )
    proxied = settings.model_copy(update={"trusted_proxies": ["10.0.0.5", "10.1.0.0/16"]})
    options = gunicorn_options(proxied, host="192.0.2.10", port=None, workers=None)
    assert options["forwarded_allow_ips"] == "10.0.0.5,10.1.0.0/16"
    check_exposure(proxied.model_copy(update={"public_url": ""}), "192.0.2.10")  # allowed
    check_exposure(settings.model_copy(update={"public_url": ""}), "127.0.0.1")  # loopback
