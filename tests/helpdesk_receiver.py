"""A helpdesk's webhook endpoint on loopback: a real HTTP server that verifies every request
with the `standardwebhooks` library, as a receiver would, and keeps what it accepted.

It answers with the statuses queued in `answers` (then 200), may wait before answering
(`delays`), and accepts each `webhook-id` once: a repeat gets 200 and is counted, not kept.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError


def new_secret() -> str:
    """Return a fresh `whsec_` secret (32 random bytes)."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


@dataclass
class Attempt:
    """One request that arrived: its headers, body and how it was answered."""

    msg_id: str
    headers: dict
    body: bytes
    status: int


class HelpdeskReceiver:
    """A receiver on 127.0.0.1 that verifies with any of `secrets` (one suffices)."""

    def __init__(self, *secrets: str, path: str = "/hooks/otys") -> None:
        self.verifiers = [Webhook(secret) for secret in secrets]
        self.path = path
        self.answers: list[int] = []
        # Where a 3xx answer points (a sender must not follow it).
        self.location = ""
        self.delays: list[float] = []
        self.attempts: list[Attempt] = []
        self.accepted: list[dict] = []
        self.duplicates = 0
        self.unverified = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{self.path}"

    def start(self) -> HelpdeskReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def types(self) -> list[str]:
        """Return the types of the accepted events, in the order they were accepted."""
        return [event["type"] for event in self.accepted]

    def _verify(self, body: bytes, headers: dict) -> dict | None:
        for verifier in self.verifiers:
            try:
                return verifier.verify(body, headers)
            except WebhookVerificationError:
                continue
        return None

    def _answer(self, msg_id: str, body: bytes, headers: dict) -> int:
        with self.lock:
            status = self.answers.pop(0) if self.answers else 200
            delay = self.delays.pop(0) if self.delays else 0.0
        event = self._verify(body, headers)
        with self.lock:
            if event is None:
                self.unverified += 1
                status = 401
            elif 200 <= status < 300:
                if msg_id in {accepted["webhook_id"] for accepted in self.accepted}:
                    self.duplicates += 1
                else:
                    self.accepted.append({**event, "webhook_id": msg_id})
            self.attempts.append(Attempt(msg_id, headers, body, status))
        time.sleep(delay)  # a slow receiver: it has the event, but answers late
        return status

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                msg_id = headers.get("webhook-id", "")
                status = receiver._answer(msg_id, body, headers)
                payload = json.dumps({"status": status}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    if 300 <= status < 400 and receiver.location:
                        self.send_header("Location", receiver.location)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the sender gave up waiting and closed the connection
                    pass

        return Handler
