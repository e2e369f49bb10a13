"""Local servers that speak the real protocols: Twilio's Messages API over HTTP, and SMTP.

The service talks to them with its real clients (the twilio library's REST client, smtplib);
only the far end is ours.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller

MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Messages\.json$")
RECORDING_PATH = re.compile(
    r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Recordings/(RE[0-9a-zA-Z]{32})\.json$"
)
NOT_FOUND = {"code": 20404, "message": "The requested resource was not found", "status": 404}


@dataclass
class Sms:
    """One message Twilio accepted."""

    sid: str
    to: str
    from_: str
    body: str
    status_callback: str | None


@dataclass
class TwilioStandIn:
    """Answers like Twilio's Messages and Recordings APIs.

    `fail_next` makes the next messages answer 500, `fail_deletes` the next recording
    deletions. A recording is known when its sid is in `recordings`; deleting it answers 204
    and adds it to `deleted`, deleting an unknown one answers 404, as Twilio does.
    """

    account_sid: str
    auth_token: str
    sent: list[Sms] = field(default_factory=list)
    fail_next: int = 0
    requests: int = 0
    recordings: set[str] = field(default_factory=set)
    deleted: list[str] = field(default_factory=list)
    fail_deletes: int = 0
    delete_requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def to(self, number: str) -> list[Sms]:
        """Return the messages sent to `number`, oldest first."""
        return [sms for sms in self.sent if sms.to == number]

    def start(self) -> TwilioStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                standin.answer_post(self)

            def do_DELETE(self) -> None:
                standin.answer_delete(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def _authorised(self, handler) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return handler.headers.get("Authorization") == f"Basic {expected}"

    def answer_post(self, handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(handler.rfile.read(length).decode()).items()}
        match = MESSAGES_PATH.match(handler.path)
        if not match or match.group(1) != self.account_sid:
            return handler._answer(404, {"code": 20404, "message": "Not found", "status": 404})
        if not self._authorised(handler):
            return handler._answer(401, {"code": 20003, "message": "Authenticate", "status": 401})
        with self.lock:
            self.requests += 1
            if self.fail_next > 0:
                self.fail_next -= 1
                return handler._answer(
                    500, {"code": 20500, "message": "Internal Server Error", "status": 500}
                )
            sms = Sms(
                sid="SM" + secrets.token_hex(16),
                to=form.get("To", ""),
                from_=form.get("From", ""),
                body=form.get("Body", ""),
                status_callback=form.get("StatusCallback"),
            )
            self.sent.append(sms)
        handler._answer(
            201,
            {
                "sid": sms.sid,
                "account_sid": self.account_sid,
                "to": sms.to,
                "from": sms.from_,
                "body": sms.body,
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sms.sid}.json",
            },
        )

    def answer_delete(self, handler) -> None:
        match = RECORDING_PATH.match(handler.path)
        if not match or match.group(1) != self.account_sid:
            return handler._answer(404, NOT_FOUND)
        if not self._authorised(handler):
            return handler._answer(401, {"code": 20003, "message": "Authenticate", "status": 401})
        sid = match.group(2)
        with self.lock:
            self.delete_requests += 1
            if self.fail_deletes > 0:
                self.fail_deletes -= 1
                return handler._answer(
                    500, {"code": 20500, "message": "Internal Server Error", "status": 500}
                )
            if sid not in self.recordings:
                return handler._answer(404, NOT_FOUND)
            self.recordings.discard(sid)
            self.deleted.append(sid)
        handler.send_response(204)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class _Inbox:
    """aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        message = message_from_bytes(envelope.original_content or envelope.content)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class MailServer:
    """A real SMTP server on a free local port; `messages` holds what arrived."""

    def __init__(self) -> None:
        self.inbox = _Inbox()
        self.port = _free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[Message]:
        return self.inbox.messages

    def to(self, address: str) -> list[Message]:
        return [message for message in self.messages if address in message["X-Envelope-To"]]

    def start(self) -> MailServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


class ChatStandIn:
    """An incoming-webhook endpoint like Slack's or Teams': keeps each JSON body posted to it."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        inbox = self.posts

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                inbox.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks/support"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
