"""The `[incidents]` settings as the ticket side uses them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app, has_app_context

from core.settings import Incidents as IncidentSettings


@dataclass(frozen=True)
class IncidentPolicy:
    """When outage reports become an incident, and how often a digest may go out."""

    threshold: int = 3
    window: timedelta = timedelta(minutes=10)
    digest: timedelta = timedelta(minutes=15)

    @classmethod
    def from_settings(cls, settings: IncidentSettings) -> IncidentPolicy:
        """Return the policy of the `[incidents]` settings."""
        return cls(
            threshold=settings.threshold,
            window=timedelta(minutes=settings.window_minutes),
            digest=timedelta(minutes=settings.digest_minutes),
        )


def policy() -> IncidentPolicy:
    """Return the running service's incident policy (the defaults outside a configured app)."""
    if has_app_context():
        configured = current_app.config.get("INCIDENTS")
        if configured is not None:
            return configured
    return IncidentPolicy()
