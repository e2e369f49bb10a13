"""Major incidents: outage reports of several organisations grouped, paged and told as one.

`models` holds the rows; `grouping` opens incidents and joins tickets to them; `pages` pages an
incident once and takes acknowledgements; `telling` texts support's updates and the
resolution to the callers; `documents` is the incident as JSON; `turns` lets transactions
that change an incident take turns. The telephone side uses what is named here:
`current_incident`, `spoken_text` and `note_outage_report`.
"""

from tickets.incidents.grouping import current_incident, note_outage_report, spoken_text
from tickets.incidents.models import Incident, IncidentUpdate
from tickets.incidents.rules import IncidentPolicy, policy

__all__ = [
    "Incident",
    "IncidentPolicy",
    "IncidentUpdate",
    "current_incident",
    "note_outage_report",
    "policy",
    "spoken_text",
]
