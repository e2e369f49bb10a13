"""Post one helpdesk event to a receiver: signed by the Standard Webhooks specification, and
never to this machine or a private network unless the receiver's settings allow it.

The address is checked where the connection is made, after the name is resolved: a host name
that resolves (or is re-pointed in DNS) to 127.0.0.1, 10.x or the cloud's metadata address is
refused before a packet goes there, and the connection is made to exactly the address checked.
Redirects are not followed, and proxies from the environment are not used.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from requests.adapters import HTTPAdapter
from standardwebhooks import Webhook as Signer
from urllib3 import Timeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from core.helpdesk_settings import Webhook

USER_AGENT = "otys-ivr-helpdesk/1"
# Seconds to connect, within the whole delivery's timeout.
CONNECT_SECONDS = 5.0
# What of a refusal's body is kept for support to read.
KEEP_BODY = 300


class AddressRefused(Exception):
    """The receiver's host resolved to an address the settings do not allow."""


def is_public(address: str) -> bool:
    """Return whether an IP address is on the public internet (not loopback, private, ...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def public_address(host: str, port: int) -> str | None:
    """Resolve `host` and return an address to connect to; refuse if any is not public.

    None when the name does not resolve: the connection then fails as usual.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return None
    addresses = [info[4][0] for info in infos]
    for address in addresses:
        if not is_public(address):
            raise AddressRefused(
                f"{host} resolves to {address}, which is not a public address "
                "(allow_private_network is off for this receiver)"
            )
    return addresses[0] if addresses else None


class _PublicOnly:
    """Connect only to a public address, the very one checked (no second look-up)."""

    def _new_conn(self):
        address = public_address(self._dns_host, self.port)
        if address is None:
            return super()._new_conn()
        named, self._dns_host = self._dns_host, address
        try:
            return super()._new_conn()
        finally:
            self._dns_host = named


class _PublicHTTPConnection(_PublicOnly, HTTPConnection):
    pass


class _PublicHTTPSConnection(_PublicOnly, HTTPSConnection):
    pass


class _PublicHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class PublicOnlyAdapter(HTTPAdapter):
    """A transport adapter whose connections go to public addresses only."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _PublicHTTPPool,
            "https": _PublicHTTPSPool,
        }


_sessions: dict[tuple[str, bool], requests.Session] = {}
_sessions_lock = threading.Lock()


def session_for(receiver: Webhook) -> requests.Session:
    """Return this process's HTTP session for a receiver (kept, so connections are reused)."""
    key = (receiver.name, receiver.allow_private_network)
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no proxy or .netrc from the environment
            if not receiver.allow_private_network:
                session.mount("http://", PublicOnlyAdapter())
                session.mount("https://", PublicOnlyAdapter())
            _sessions[key] = session
        return session


def sign(receiver: Webhook, *, msg_id: str, body: str, at: datetime) -> dict[str, str]:
    """Return the Standard Webhooks headers: one `v1,` signature per secret (two while rotating)."""
    signatures = " ".join(Signer(secret).sign(msg_id, at, body) for secret in receiver.secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
    }


@dataclass(frozen=True)
class Outcome:
    """How one attempt went: delivered (2xx), or why not, in words for support and a metric."""

    delivered: bool
    status: int | None = None
    # delivered, gone (410), http_429, http_5xx, http_4xx, http_3xx, timeout, connection,
    # refused_address: a fixed word, fit for a metric label.
    reason: str = "delivered"
    error: str | None = None
    retry_after: float | None = None


def _reason_of(status: int) -> str:
    if status == 410:
        return "gone"
    if status == 429:
        return "http_429"
    return f"http_{status // 100}xx" if 300 <= status < 600 else "http_other"


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


def _cause(exc: BaseException) -> str:
    """Return the innermost socket error of a failed request: its words carry no URL."""
    seen, current = set(), exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and not current.__class__.__module__.startswith(
            ("urllib3", "requests")
        ):
            return str(current) or current.__class__.__name__
        current = current.__cause__ or current.__context__ or getattr(current, "reason", None)
    return exc.__class__.__name__


def post_event(receiver: Webhook, *, msg_id: str, body: str, timeout: float) -> Outcome:
    """POST one event to a receiver, signed now, and say how it went; never raises for it."""
    # The receiver checks the timestamp against its own clock: the real time, never a test's.
    headers = sign(receiver, msg_id=msg_id, body=body, at=datetime.now(UTC))
    headers.update({"content-type": "application/json", "user-agent": USER_AGENT})
    try:
        response = session_for(receiver).post(
            receiver.url,
            data=body.encode("utf-8"),
            headers=headers,
            timeout=Timeout(total=timeout, connect=min(CONNECT_SECONDS, timeout)),
            allow_redirects=False,
            stream=True,
        )
    except AddressRefused as exc:
        return Outcome(False, reason="refused_address", error=str(exc))
    except requests.Timeout:
        return Outcome(False, reason="timeout", error=f"no answer within {timeout:g} s")
    except requests.RequestException as exc:
        return Outcome(False, reason="connection", error=f"could not connect: {_cause(exc)}")
    with response:
        if 200 <= response.status_code < 300:
            return Outcome(True, status=response.status_code)
        try:
            said = response.raw.read(KEEP_BODY, decode_content=True).decode("utf-8", "replace")
        except Exception:  # noqa: BLE001 - what it said is only a courtesy to support
            said = ""
        words = f"HTTP {response.status_code}" + (f": {' '.join(said.split())}" if said else "")
        return Outcome(
            False,
            status=response.status_code,
            reason=_reason_of(response.status_code),
            error=words[:500],
            retry_after=_retry_after(response),
        )
