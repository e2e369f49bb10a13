"""A local stand-in for Twilio's REST API: Messages, Calls, Recordings and IncomingPhoneNumbers.

The service talks to it with the twilio library's own REST client (pointed here through
`TWILIO_API_URL`), as it would to Twilio; only the far end is ours. The bench uses it so it
runs with paging on, and the tests use it to see what was sent, to make Twilio fail, to
delete recordings, and to wire the account's numbers. It lives in bench/ because the bench may not
import from tests/.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Messages\.json$")
CALLS_PATH = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Calls\.json$")
RECORDING_PATH = re.compile(
    r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Recordings/(RE[0-9a-zA-Z]{32})\.json$"
)
NUMBERS_PATH = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/IncomingPhoneNumbers\.json$")
NUMBER_PATH = re.compile(
    r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/IncomingPhoneNumbers/(PN[0-9a-f]{32})\.json$"
)
# The form fields a number update may set, and the resource's JSON name of each.
NUMBER_FIELDS = {
    "FriendlyName": "friendly_name",
    "VoiceUrl": "voice_url",
    "VoiceMethod": "voice_method",
    "VoiceFallbackUrl": "voice_fallback_url",
    "VoiceFallbackMethod": "voice_fallback_method",
    "StatusCallback": "status_callback",
    "StatusCallbackMethod": "status_callback_method",
    "VoiceApplicationSid": "voice_application_sid",
    "SmsUrl": "sms_url",
    "SmsMethod": "sms_method",
    "SmsFallbackUrl": "sms_fallback_url",
    "SmsFallbackMethod": "sms_fallback_method",
    "SmsApplicationSid": "sms_application_sid",
    "TrunkSid": "trunk_sid",
}
NOT_FOUND = {"code": 20404, "message": "The requested resource was not found", "status": 404}
UNAUTHORISED = {"code": 20003, "message": "Authenticate", "status": 401}
INVALID_URL = {"code": 21402, "message": "Url is not a valid URL", "status": 400}
URL_REQUIRED = {"code": 21205, "message": "Url parameter is required.", "status": 400}
TO_REQUIRED = {"code": 21201, "message": "No 'To' number is specified", "status": 400}
FROM_REQUIRED = {"code": 21213, "message": "No 'From' number is specified", "status": 400}
SERVER_ERROR = {"code": 20500, "message": "Internal Server Error", "status": 500}


@dataclass
class Sms:
    """One message Twilio accepted."""

    sid: str
    to: str
    from_: str
    body: str
    status_callback: str | None


@dataclass
class PlacedCall:
    """One outbound call Twilio accepted through its Calls API (`form`: all that was posted)."""

    sid: str
    to: str
    from_: str
    url: str
    status_callback: str | None
    fallback_url: str | None
    form: dict[str, str]


@dataclass
class TwilioStandIn:
    """Answers like Twilio's Messages, Calls and Recordings APIs for one account on 127.0.0.1.

    A message posted with the account's credentials answers 201 and is kept in `sent`;
    `requests` counts those posts, `refused` the requests with a wrong account or credentials.
    `fail_next` makes the next messages answer 500, `fail_deletes` the next recording
    deletions. A recording is known when its sid is in `recordings`; deleting it answers 204
    and adds it to `deleted`, deleting an unknown one answers 404, as Twilio does.

    A call posted to the Calls API answers 201 and is kept in `calls` (nothing rings: a test or
    the bench then requests its `url` as Twilio would); `fail_calls` makes the next ones answer
    500. A call without `To`, `From` or `Url` answers 400, as Twilio does.

    The account's phone numbers are `numbers` (sid -> the resource as Twilio's JSON shows it;
    `add_number` buys one). Listing them filters on `PhoneNumber` like Twilio (a partial number,
    `*` for any digit); each update posted is kept in `number_updates` as (number, form), and
    an update of a number in `refuse_updates` answers 400, as Twilio refuses a setting.
    """

    account_sid: str
    auth_token: str
    sent: list[Sms] = field(default_factory=list)
    calls: list[PlacedCall] = field(default_factory=list)
    fail_calls: int = 0
    fail_next: int = 0
    requests: int = 0
    refused: int = 0
    recordings: set[str] = field(default_factory=set)
    deleted: list[str] = field(default_factory=list)
    fail_deletes: int = 0
    delete_requests: int = 0
    numbers: dict[str, dict] = field(default_factory=dict)
    number_updates: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    refuse_updates: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    connections: set = field(default_factory=set)  # open client connections, closed by stop()
    stopped: bool = False

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def accepted(self) -> int:
        """How many messages were accepted."""
        return len(self.sent)

    def to(self, number: str) -> list[Sms]:
        """Return the messages sent to `number`, oldest first."""
        with self.lock:
            return [sms for sms in self.sent if sms.to == number]

    def add_number(self, phone_number: str, *, sms: bool = True, **fields: str) -> dict:
        """Put a number on the account, answering Twilio's demo until wired; return it."""
        sid = "PN" + secrets.token_hex(16)
        now = format_datetime(datetime.now(UTC), usegmt=True)
        resource = {
            "sid": sid,
            "account_sid": self.account_sid,
            "phone_number": phone_number,
            "friendly_name": phone_number,
            "capabilities": {"voice": True, "sms": sms, "mms": False, "fax": False},
            "voice_url": "https://demo.twilio.com/welcome/voice/",
            "voice_method": "POST",
            "voice_fallback_url": "",
            "voice_fallback_method": "POST",
            "status_callback": "",
            "status_callback_method": "POST",
            "voice_application_sid": "",
            "voice_caller_id_lookup": False,
            "sms_url": "https://demo.twilio.com/welcome/sms/reply/" if sms else "",
            "sms_method": "POST",
            "sms_fallback_url": "",
            "sms_fallback_method": "POST",
            "sms_application_sid": "",
            "trunk_sid": None,
            "api_version": "2010-04-01",
            "origin": "twilio",
            "status": "in-use",
            "beta": False,
            "date_created": now,
            "date_updated": now,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/IncomingPhoneNumbers/{sid}.json",
        }
        resource.update(fields)
        with self.lock:
            self.numbers[sid] = resource
        return resource

    def change_number(self, phone_number: str, **fields) -> None:
        """Change a number's settings behind the service's back, as someone in the console."""
        with self.lock:
            for resource in self.numbers.values():
                if resource["phone_number"] == phone_number:
                    resource.update(fields)

    def number(self, phone_number: str) -> dict | None:
        """Return the account's resource of `phone_number`, as it is now."""
        with self.lock:
            found = [r for r in self.numbers.values() if r["phone_number"] == phone_number]
        return dict(found[0]) if found else None

    def start(self) -> TwilioStandIn:
        """Listen on a free loopback port in a daemon thread."""
        standin = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as Twilio: the service's client keeps its connection between messages.
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test and bench output quiet
                pass

            def setup(self) -> None:
                super().setup()
                with standin.lock:
                    if standin.stopped:  # accepted just before stop(): not served
                        self.connection.shutdown(socket.SHUT_RDWR)
                    standin.connections.add(self.connection)

            def finish(self) -> None:
                with standin.lock:
                    standin.connections.discard(self.connection)
                super().finish()

            def do_POST(self) -> None:
                self._send(*standin.answer_post(self.path, self.headers, self._form()))

            def do_GET(self) -> None:
                self._send(*standin.answer_get(self.path, self.headers))

            def do_DELETE(self) -> None:
                self._form()  # read any body, so the next request on the connection starts clean
                self._send(*standin.answer_delete(self.path, self.headers))

            def _form(self) -> dict[str, str]:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                # A blank value counts: it is how a number's URL or application is cleared.
                return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}

            def _send(self, status: int, body: dict | None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # stop() must not wait for connections the client keeps open.
        self.server.block_on_close = False
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def _refusal(self, match: re.Match | None, headers) -> tuple[int, dict] | None:
        """Return Twilio's answer to a wrong account or wrong credentials, None when both hold."""
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if not match or match.group(1) != self.account_sid:
            answer = 404, NOT_FOUND
        elif headers.get("Authorization") != f"Basic {expected}":
            answer = 401, UNAUTHORISED
        else:
            return None
        with self.lock:
            self.refused += 1
        return answer

    def answer_get(self, path: str, headers) -> tuple[int, dict]:
        """Return the status and JSON body of a list of the account's numbers."""
        parts = urlsplit(path)
        refusal = self._refusal(NUMBERS_PATH.match(parts.path), headers)
        if refusal:
            return refusal
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        wanted = query.get("PhoneNumber", "")
        pattern = re.compile(re.escape(wanted).replace(r"\*", r"\d"))
        page_size = int(query.get("PageSize") or 50)
        with self.lock:
            found = [dict(r) for r in self.numbers.values() if pattern.search(r["phone_number"])]
        first = f"{parts.path}?" + urlencode({**query, "Page": 0, "PageSize": page_size})
        return 200, {
            "incoming_phone_numbers": found[:page_size],
            "start": 0,
            "end": max(0, min(len(found), page_size) - 1),
            "page": 0,
            "page_size": page_size,
            "first_page_uri": first,
            "next_page_uri": None,
            "previous_page_uri": None,
            "uri": first,
        }

    def answer_number_update(
        self, match: re.Match, headers, form: dict[str, str]
    ) -> tuple[int, dict]:
        """Return the status and JSON body of a posted change to one of the account's numbers."""
        refusal = self._refusal(match, headers)
        if refusal:
            return refusal
        with self.lock:
            resource = self.numbers.get(match.group(2))
            if resource is None:
                return 404, NOT_FOUND
            if resource["phone_number"] in self.refuse_updates:
                return 400, INVALID_URL
            for name, value in form.items():
                if name in NUMBER_FIELDS:
                    resource[NUMBER_FIELDS[name]] = value
            if form.get("VoiceApplicationSid"):  # as Twilio: an application replaces a trunk
                resource["trunk_sid"] = None
            resource["date_updated"] = format_datetime(datetime.now(UTC), usegmt=True)
            self.number_updates.append((resource["phone_number"], dict(form)))
            return 200, dict(resource)

    def calls_to(self, number: str) -> list[PlacedCall]:
        """Return the calls placed to `number`, oldest first."""
        with self.lock:
            return [call for call in self.calls if call.to == number]

    def answer_call(self, match: re.Match, headers, form: dict[str, str]) -> tuple[int, dict]:
        """Return the status and JSON body Twilio's Calls API answers to one posted call."""
        refusal = self._refusal(match, headers)
        if refusal:
            return refusal
        for name, problem in (("To", TO_REQUIRED), ("From", FROM_REQUIRED)):
            if not form.get(name):
                return 400, problem
        if not (form.get("Url") or form.get("Twiml") or form.get("ApplicationSid")):
            return 400, URL_REQUIRED
        with self.lock:
            if self.fail_calls > 0:
                self.fail_calls -= 1
                return 500, SERVER_ERROR
            call = PlacedCall(
                sid="CA" + secrets.token_hex(16),
                to=form["To"],
                from_=form["From"],
                url=form.get("Url", ""),
                status_callback=form.get("StatusCallback"),
                fallback_url=form.get("FallbackUrl"),
                form=dict(form),
            )
            self.calls.append(call)
        return 201, self.call_resource(call)

    def call_resource(self, call: PlacedCall) -> dict:
        """Return a call as Twilio's JSON shows it just after it was queued."""
        now = format_datetime(datetime.now(UTC), usegmt=True)
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Calls/{call.sid}"
        return {
            "sid": call.sid,
            "account_sid": self.account_sid,
            "parent_call_sid": None,
            "to": call.to,
            "to_formatted": call.to,
            "from": call.from_,
            "from_formatted": call.from_,
            "phone_number_sid": None,
            "status": "queued",
            "start_time": None,
            "end_time": None,
            "duration": None,
            "price": None,
            "price_unit": "USD",
            "direction": "outbound-api",
            "answered_by": None,
            "api_version": "2010-04-01",
            "forwarded_from": None,
            "group_sid": None,
            "caller_name": None,
            "queue_time": "0",
            "trunk_sid": None,
            "date_created": now,
            "date_updated": now,
            "uri": uri + ".json",
            "subresource_uris": {
                "recordings": uri + "/Recordings.json",
                "notifications": uri + "/Notifications.json",
            },
        }

    def answer_post(self, path: str, headers, form: dict[str, str]) -> tuple[int, dict]:
        """Return the status and JSON body Twilio would answer to one posted message or call."""
        number = NUMBER_PATH.match(path)
        if number:
            return self.answer_number_update(number, headers, form)
        call = CALLS_PATH.match(path)
        if call:
            return self.answer_call(call, headers, form)
        refusal = self._refusal(MESSAGES_PATH.match(path), headers)
        if refusal:
            return refusal
        with self.lock:
            self.requests += 1
            if self.fail_next > 0:
                self.fail_next -= 1
                return 500, SERVER_ERROR
            sms = Sms(
                sid="SM" + secrets.token_hex(16),
                to=form.get("To", ""),
                from_=form.get("From", ""),
                body=form.get("Body", ""),
                status_callback=form.get("StatusCallback"),
            )
            self.sent.append(sms)
        return 201, {
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
        }

    def answer_delete(self, path: str, headers) -> tuple[int, dict | None]:
        """Return the status and JSON body (None: no body) of one recording deletion."""
        match = RECORDING_PATH.match(path)
        refusal = self._refusal(match, headers)
        if refusal:
            return refusal
        sid = match.group(2)
        with self.lock:
            self.delete_requests += 1
            if self.fail_deletes > 0:
                self.fail_deletes -= 1
                return 500, SERVER_ERROR
            if sid not in self.recordings:
                return 404, NOT_FOUND
            self.recordings.discard(sid)
            self.deleted.append(sid)
        return 204, None

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        # Close the connections clients keep alive: a client (the service's twilio client is
        # kept per thread) must not reach this stand-in after a new one took its port.
        with self.lock:
            self.stopped = True
            connections, self.connections = self.connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
