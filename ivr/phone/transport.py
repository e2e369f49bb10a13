"""Deliver the terminal telephone's webhooks: over HTTP, or through a Flask test client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import requests


class CallFailed(Exception):
    """The service answered something Twilio would not accept; the call cannot go on."""


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, body text and content type."""

    status: int
    body: str
    content_type: str = ""


class Transport(Protocol):
    """Deliver one signed webhook and return the service's answer."""

    def send(self, method: str, url: str, params: dict[str, str], signature: str) -> Reply:
        """Send `params` to `url` with the X-Twilio-Signature header."""


class HttpTransport:
    """Send webhooks over real HTTP, waiting at most as long as Twilio does."""

    def __init__(self, timeout: float = 15.0) -> None:
        self.session = requests.Session()
        self.timeout = timeout

    def send(self, method: str, url: str, params: dict[str, str], signature: str) -> Reply:
        """Post (or get) the webhook and return the answer."""
        headers = {"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1 (ivr call)"}
        try:
            if method == "GET":
                response = self.session.get(url, headers=headers, timeout=self.timeout)
            else:
                response = self.session.post(
                    url, data=params, headers=headers, timeout=self.timeout
                )
        except requests.RequestException as exc:
            raise CallFailed(f"cannot reach {url}: {exc}") from exc
        return Reply(response.status_code, response.text, response.headers.get("Content-Type", ""))


class ClientTransport:
    """Send webhooks through a Werkzeug/Flask test client instead of the network."""

    def __init__(self, client) -> None:
        self.client = client

    def send(self, method: str, url: str, params: dict[str, str], signature: str) -> Reply:
        """Open the URL's path and query on the test client."""
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"X-Twilio-Signature": signature}
        data = None if method == "GET" else params
        response = self.client.open(target, method=method, data=data, headers=headers)
        return Reply(response.status_code, response.get_data(as_text=True), response.mimetype)
