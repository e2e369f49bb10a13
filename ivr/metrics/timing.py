"""Time every webhook, by its Flask endpoint (never by its URL, which carries call state)."""

from __future__ import annotations

import time

from flask import request

from ivr.metrics.counters import observe_webhook
from ivr.signatures import WEBHOOK_PREFIXES

# The environ key of the moment a request had arrived whole (`time.perf_counter()`), before it
# waited for a place in `ivr serve`'s admission: webhook latency is measured from there.
ARRIVED_AT = "ivr.arrived_at"


def start_clock() -> None:
    """Note when the request arrived, unless `ivr serve`'s admission already did."""
    request.environ.setdefault(ARRIVED_AT, time.perf_counter())


def stop_clock(_error: BaseException | None = None) -> None:
    """Record how long a webhook took, from its arrival to its answer."""
    started = request.environ.get(ARRIVED_AT)
    rule = request.url_rule
    if started is None or rule is None or not request.path.startswith(WEBHOOK_PREFIXES):
        return
    observe_webhook(rule.endpoint, time.perf_counter() - started)
