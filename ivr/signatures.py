"""Check that a webhook request really comes from Twilio."""

from __future__ import annotations

import functools
import ipaddress
import logging

from flask import abort, current_app, request
from twilio.request_validator import RequestValidator

log = logging.getLogger(__name__)


def _from_trusted_proxy(remote_addr: str | None, proxies: list[str]) -> bool:
    """Return whether the direct peer is one of the configured reverse proxies."""
    if not remote_addr:
        return False
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    for proxy in proxies:
        try:
            if address in ipaddress.ip_network(proxy, strict=False):
                return True
        except ValueError:
            continue
    return False


def public_request_url() -> str:
    """Rebuild the URL Twilio requested, from the configured public base or trusted proxy."""
    settings = current_app.config["SETTINGS"]
    path = request.full_path.rstrip("?") if request.query_string else request.path
    if settings.public_url:
        return settings.public_url + path
    if _from_trusted_proxy(request.remote_addr, settings.trusted_proxies):
        proto = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
        host = request.headers.get("X-Forwarded-Host", request.host).split(",")[0].strip()
        return f"{proto}://{host}{path}"
    return f"{request.scheme}://{request.host}{path}"


def request_is_from_twilio() -> bool:
    """Validate X-Twilio-Signature over the public URL and the POST parameters."""
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    token = current_app.config["SETTINGS"].twilio_auth_token.get_secret_value()
    return RequestValidator(token).validate(public_request_url(), request.form, signature)


def twilio_only(view):
    """Answer 403 to any request to `view` that Twilio did not sign."""

    @functools.wraps(view)
    def checked(*args, **kwargs):
        if not request_is_from_twilio():
            log.warning("rejected unsigned or badly signed request to %s", request.path)
            abort(403)
        return view(*args, **kwargs)

    return checked
