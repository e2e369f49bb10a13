"""`GET /metrics`: Prometheus' text format, for the configured networks or the bearer token."""

from __future__ import annotations

import hmac
import ipaddress
import logging

from flask import Blueprint, Response, current_app, request
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

from app.metrics.state import ServiceState
from core.settings import Settings, current_settings
from tickets.auth import client_address, forwarded_for, is_trusted_proxy

log = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)

# Set by `ivr serve` in each worker: the directory prometheus-client's multiprocess mode writes
# every worker's values to. Unset (the Flask test client, one process): this process's values.
DIRECTORY = "METRICS_DIRECTORY"
# Headers by which a proxy says whom it forwards for. Only X-Forwarded-For is believed (from a
# trusted proxy); the others, CDNs' included, make a request count as forwarded all the same.
FORWARDED_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Client-IP", "True-Client-IP")


def has_valid_token(settings: Settings) -> bool:
    """Return whether the request carries the configured bearer token (constant-time compare)."""
    token = settings.metrics.token.get_secret_value()
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def is_from_allowed_network(settings: Settings) -> bool:
    """Return whether the client's address is in `metrics.allow`.

    A forwarded request is not believed to come from the proxy's own address (often loopback):
    it counts by network only when a proxy in `trusted_proxies` names the client in
    X-Forwarded-For, else it gets in with the token only.
    """
    forwarded = any(request.headers.get(name) for name in FORWARDED_HEADERS)
    trusted = is_trusted_proxy(request.remote_addr, settings.trusted_proxies)
    if forwarded and not (trusted and forwarded_for()):
        return False
    try:
        address = ipaddress.ip_address(client_address())
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(
        address in ipaddress.ip_network(network, strict=False) for network in settings.metrics.allow
    )


class _ThisProcess:
    """A collector of this process's own registry (when no multiprocess directory is set)."""

    def collect(self):
        """Yield every metric of this process's default registry."""
        return REGISTRY.collect()


def scrape_registry(settings: Settings, directory: str | None) -> CollectorRegistry:
    """Return a registry of every worker's metrics (or this process's) and the shared state."""
    registry = CollectorRegistry()
    if directory:
        MultiProcessCollector(registry, path=directory)
    else:
        registry.register(_ThisProcess())
    registry.register(ServiceState(settings))
    return registry


@bp.get("/metrics")
def metrics():
    """Answer Prometheus' scrape, to allowed networks or with the bearer token."""
    settings: Settings = current_settings()
    if not (is_from_allowed_network(settings) or has_valid_token(settings)):
        log.warning("metrics refused to %s", client_address())
        if settings.metrics.token.get_secret_value():
            return Response("bearer token required\n", 401, {"WWW-Authenticate": "Bearer"})
        return Response("forbidden\n", 403, mimetype="text/plain")
    registry = scrape_registry(settings, current_app.config.get(DIRECTORY))
    # The classic text format: every Prometheus version reads it, and so does the client's parser.
    return Response(
        generate_latest(registry),
        headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4, "Cache-Control": "no-store"},
    )
