"""Major incidents: outage reports of several organisations grouped, paged and told as one.

`models` holds the rows, `grouping` opens incidents and joins tickets to them. The telephone
side uses what is named here: `current_incident`, `spoken_text` and `note_outage_report`.
"""

from tickets.incidents.grouping import (
    IncidentPolicy,
    current_incident,
    note_outage_report,
    policy,
    spoken_text,
)
from tickets.incidents.models import Incident, IncidentUpdate

__all__ = [
    "Incident",
    "IncidentPolicy",
    "IncidentUpdate",
    "current_incident",
    "note_outage_report",
    "policy",
    "spoken_text",
]
