"""A stand-in for Twilio's Messages API, so the bench runs with paging on.

The service's sender loop posts each page and caller SMS here with the twilio library's own
REST client, as it would to Twilio; the stand-in checks the account and answers 201 like
Twilio does. Only the far end is ours, and it only counts.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Messages\.json$")


class MessagesStandIn:
    """Accepts messages for one account on 127.0.0.1 and counts them."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self._expected = (
            "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        )
        self.accepted = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> MessagesStandIn:
        """Listen on a free loopback port in a daemon thread."""
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # the bench prints its own figures
                pass

            def do_POST(self) -> None:
                status, body = standin.answer(self)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict]:
        """Return the status and JSON body Twilio would answer to one posted message."""
        length = int(handler.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(handler.rfile.read(length).decode()).items()}
        match = MESSAGES_PATH.match(handler.path)
        ok = match and match.group(1) == self.account_sid
        authorised = handler.headers.get("Authorization") == self._expected
        with self._lock:
            if not (ok and authorised):
                self.refused += 1
                return 404 if not ok else 401, {"code": 20404, "status": 404}
            self.accepted += 1
        sid = "SM" + secrets.token_hex(16)
        return 201, {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": form.get("To", ""),
            "from": form.get("From", ""),
            "body": form.get("Body", ""),
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
