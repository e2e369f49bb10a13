"""Check that a webhook request really comes from Twilio."""

from __future__ import annotations

import functools
import logging
import re
from urllib.parse import quote

from flask import abort, request
from twilio.request_validator import RequestValidator

from core.settings import current_settings
from tickets.auth import is_trusted_proxy

log = logging.getLogger(__name__)

# Twilio's webhooks are a few kilobytes with some forty fields; anything far larger is refused
# before any parsing or signature work, so unsigned junk costs next to no CPU.
WEBHOOK_PREFIXES = ("/voice/", "/sms/")


def is_support_path(path: str) -> bool:
    """Return whether a request is support traffic (dashboard, API, metrics), not one the line
    itself depends on: Twilio's webhooks and the load balancer's health check."""
    return not path.startswith((*WEBHOOK_PREFIXES, "/health"))


WEBHOOK_MAX_BYTES = 16 * 1024
WEBHOOK_MAX_FIELDS = 200

# Characters left as they are when a decoded path is percent-encoded again (RFC 3986 pchar).
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
# A host name, IPv4 or [IPv6] address, with an optional port.
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")


def _requested_target() -> str:
    """Return the path and query string as the client sent them (percent-encoding kept)."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw and raw.startswith("/"):
        return raw
    path = quote(request.script_root + request.path, safe=_PATH_SAFE)
    query = request.query_string.decode("latin-1")
    return f"{path}?{query}" if query else path


def _first_value(header: str) -> str:
    """Return the first (client-facing) value of a comma-separated proxy header."""
    return (request.headers.get(header) or "").split(",")[0].strip()


def _forwarded_base() -> str | None:
    """Return scheme://host[:port] from the proxy headers, None when they are missing or odd."""
    proto = _first_value("X-Forwarded-Proto").lower() or request.scheme
    host = _first_value("X-Forwarded-Host") or request.host
    port = _first_value("X-Forwarded-Port")
    if proto not in ("http", "https") or not _HOST.fullmatch(host):
        return None
    if port and ":" not in host.rsplit("]", 1)[-1]:
        if not port.isdigit():
            return None
        if (proto, port) not in (("http", "80"), ("https", "443")):
            host = f"{host}:{port}"
    return f"{proto}://{host}"


def public_request_url() -> str:
    """Rebuild the URL Twilio requested, from the configured public base or trusted proxy."""
    settings = current_settings()
    target = _requested_target()
    if settings.public_url:
        return settings.public_url + target
    if is_trusted_proxy(request.remote_addr, settings.trusted_proxies):
        base = _forwarded_base()
        if base is not None:
            return base + target
    return f"{request.scheme}://{request.host}{target}"


def request_is_from_twilio() -> bool:
    """Validate X-Twilio-Signature over the public URL and the POST parameters."""
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    token = current_settings().twilio_auth_token.get_secret_value()
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


def limit_webhook_size() -> None:
    """Refuse an oversized webhook body (413) before anything parses it."""
    if not request.path.startswith(WEBHOOK_PREFIXES):
        return
    request.max_content_length = WEBHOOK_MAX_BYTES
    request.max_form_parts = WEBHOOK_MAX_FIELDS
    # Read (and cache) the capped body: the form is parsed from this copy later.
    body = request.get_data(cache=True)
    if body.count(b"&") >= WEBHOOK_MAX_FIELDS:
        abort(413)
