"""Let a request into the app only once it has arrived whole, and only a few at a time.

`ivr serve` runs gunicorn's gevent workers: every connection waits in a greenlet of its own, so
a client that sends its request slowly, or not at all, holds no more than that greenlet.
gunicorn gives a request's line and headers `server.read_timeout` seconds; the body is read here,
within the same time, before the request may take one of the worker's few places in the app.
Those places keep the number of requests inside the app (and so the database connections it
holds) where the thread pool kept it, so a flood of requests waits its turn instead of
exhausting the database pool, which the service would take for a database outage.

Support traffic (the dashboard, the API, metrics: anything that is not Twilio's webhooks or
the load balancer's health check) waits for places of its own and uses connections of its own
(`core.db.Database`), so however much of it there is, a caller's webhook never waits for it.
"""

from __future__ import annotations

import io
import time

import gevent
from gevent.lock import BoundedSemaphore
from werkzeug.exceptions import HTTPException, RequestTimeout
from werkzeug.wsgi import get_input_stream

from ivr.metrics.timing import ARRIVED_AT
from ivr.signatures import is_support_path


class WholeRequests:
    """WSGI middleware: read the body within a deadline, then run the app in one of its places.

    Webhooks take one of `places`, support requests one of `support_places`.
    """

    def __init__(
        self, app, *, places: int, support_places: int, read_seconds: float, max_bytes: int
    ) -> None:
        self.app = app
        self.places = BoundedSemaphore(places)
        self.support_places = BoundedSemaphore(support_places)
        self.read_seconds = read_seconds
        self.max_bytes = max_bytes

    def __call__(self, environ, start_response):
        try:
            body = self._read_body(environ)
        except HTTPException as refusal:
            return refusal(environ, start_response)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ[ARRIVED_AT] = time.perf_counter()
        # The app's answer is built before it returns: writing it to a slow reader, or
        # passing a recording on from Twilio, happens after the place is free again.
        support = is_support_path(environ.get("PATH_INFO") or "")
        with self.support_places if support else self.places:
            return self.app(environ, start_response)

    def _read_body(self, environ) -> bytes:
        """Return the whole body; 408 when it takes too long, 413 when it is too large."""
        stream = get_input_stream(environ, max_content_length=self.max_bytes)
        body = None
        with gevent.Timeout(self.read_seconds, False):  # False: on time-out, leave the block
            body = stream.read()
        if body is None:
            raise RequestTimeout()
        return body
