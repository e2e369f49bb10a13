"""Hand one message to the outside world: Twilio's Messages API, a mail server, a chat webhook.

Each channel answers with the provider's id for the message, or raises `SendError` saying
whether trying again later can help (a server error, a timeout) or not (a refused number).
"""

from __future__ import annotations

import smtplib
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from urllib.parse import unquote, urlsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from core.settings import Settings
from ivr.messaging.texts import Text

TIMEOUT_SECONDS = 10


class SendError(Exception):
    """Sending failed; `retry` says whether a later attempt may succeed."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def twilio_client(settings: Settings, *, timeout: float = TIMEOUT_SECONDS) -> Client:
    """Return this thread's twilio REST client for our account, pointed at `twilio_api_url`.

    One per thread (a greenlet under gevent) and account: its HTTP session keeps the connection
    (and TLS session) to Twilio open between messages instead of a new handshake for each, and
    no two threads share one (the library's HTTP client keeps the last response on itself).
    """
    key = (
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        settings.twilio_api_url.rstrip("/"),
        timeout,
    )
    clients = getattr(_clients, "by_key", None)
    if clients is None:
        clients = _clients.by_key = {}
    if key not in clients:
        if len(clients) >= 4:  # another account or URL (tests): drop the old ones
            clients.clear()
        account_sid, auth_token, api_url, _ = key
        client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
        client.api.base_url = api_url
        clients[key] = client
    return clients[key]


_clients = threading.local()


@contextmanager
def _twilio_errors() -> Iterator[None]:
    """Turn what Twilio's REST client raises into a SendError: 5xx and 429 are retried."""
    try:
        yield
    except TwilioRestException as exc:
        retry = exc.status >= 500 or exc.status == 429
        problem = f"Twilio {exc.status} {exc.code or ''}: {exc.msg}"[:400]
        raise SendError(problem, retry=retry) from exc
    except (TwilioException, requests.RequestException) as exc:
        raise SendError(f"Twilio not reachable: {type(exc).__name__}", retry=True) from exc


def send_sms(settings: Settings, *, to: str, text: Text, key: str) -> str:
    """Send an SMS through Twilio's Messages API; return the message SID."""
    status_callback = None
    if settings.public_url:
        # The key comes back with every status: a message sent just before a crash is known.
        status_callback = f"{settings.public_url}/sms/status?ref={key}"
    with _twilio_errors():
        message = twilio_client(settings).messages.create(
            to=to,
            from_=settings.paging.sms_from,
            body=text.body,
            status_callback=status_callback,
        )
    return message.sid


def place_call(
    settings: Settings, *, to: str, url: str, status_callback: str, fallback_url: str
) -> str:
    """Place a call through Twilio's Calls API from the emergency line's number; return its SID.

    Twilio rings `to` for `emergency.dial_timeout` seconds; once answered, it runs our TwiML
    at `url` (the fallback when that fails), and reports the call's end to `status_callback`.
    """
    with _twilio_errors():
        call = twilio_client(settings).calls.create(
            to=to,
            from_=settings.emergency.numbers[0],
            url=url,
            method="POST",
            fallback_url=fallback_url,
            fallback_method="POST",
            status_callback=status_callback,
            status_callback_method="POST",
            timeout=settings.emergency.dial_timeout,
        )
    return call.sid


def _smtp_session(url: str) -> smtplib.SMTP:
    """Open and sign in to the mail server of `smtp://user:password@host:port`."""
    parts = urlsplit(url)
    context = ssl.create_default_context()
    if parts.scheme == "smtps":
        server = smtplib.SMTP_SSL(
            parts.hostname, parts.port or 465, timeout=TIMEOUT_SECONDS, context=context
        )
    else:
        server = smtplib.SMTP(parts.hostname, parts.port or 25, timeout=TIMEOUT_SECONDS)
        server.ehlo()
        if server.has_extn("starttls"):
            server.starttls(context=context)
            server.ehlo()
    if parts.username:
        server.login(unquote(parts.username), unquote(parts.password or ""))
    return server


def reach_mail_server(settings: Settings) -> None:
    """Connect and sign in to the mail server, send nothing; raise SendError when it fails."""
    try:
        with _smtp_session(settings.paging.smtp_url) as server:
            server.noop()
    except smtplib.SMTPResponseException as exc:
        raise SendError(f"mail server answered {exc.smtp_code}", retry=True) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise SendError(f"mail server not reachable: {type(exc).__name__}", retry=True) from exc


def send_email(settings: Settings, *, to: str, name: str | None, text: Text, key: str) -> str:
    """Send an e-mail; its Message-ID carries the key, so a resent copy is the same message."""
    message = EmailMessage()
    message["From"] = settings.paging.email_from
    message["To"] = formataddr((name or "", to))
    message["Subject"] = text.subject
    message["Message-ID"] = make_msgid(idstring=key, domain="ivr.otys")
    message.set_content(text.body)
    try:
        with _smtp_session(settings.paging.smtp_url) as server:
            server.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        raise SendError(f"mail server refused {to}", retry=False) from exc
    except smtplib.SMTPResponseException as exc:
        raise SendError(f"mail server {exc.smtp_code}", retry=400 <= exc.smtp_code < 500) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise SendError(f"mail server not reachable: {type(exc).__name__}", retry=True) from exc
    return message["Message-ID"]


def send_chat(settings: Settings, *, text: Text) -> str:
    """Post to the configured Teams or Slack incoming webhook."""
    if settings.paging.chat_format == "teams":
        payload = {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": text.body[:100],
            "text": text.body,
        }
    else:
        payload = {"text": text.body}
    try:
        answer = requests.post(
            settings.paging.chat_webhook_url, json=payload, timeout=TIMEOUT_SECONDS
        )
    except requests.RequestException as exc:
        raise SendError(f"chat webhook not reachable: {type(exc).__name__}", retry=True) from exc
    if answer.status_code >= 400:
        retry = answer.status_code >= 500 or answer.status_code == 429
        raise SendError(f"chat webhook answered {answer.status_code}", retry=retry)
    return f"chat:{answer.status_code}"
