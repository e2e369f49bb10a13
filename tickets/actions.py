"""The changes staff make to a ticket, by name: the lifecycle function and the inputs it takes.

The dashboard's forms and the API's JSON bodies name their inputs alike (`status`, `rating`,
`version`, ...), so both fronts apply the same table and cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from tickets import lifecycle
from tickets.models import StaffUser, Ticket


@dataclass(frozen=True)
class TicketAction:
    """One change to a ticket: the lifecycle function and where its arguments come from."""

    change: Callable[..., object]
    # Keyword argument of `change` -> name of the input (form field or JSON key) it is read from.
    inputs: Mapping[str, str] = field(default_factory=dict)
    # Whether the input `version` guards the change against edits made meanwhile.
    versioned: bool = True
    # Whether the change notes how it was made (it may acknowledge the ticket and stop paging).
    says_via: bool = False

    def apply(
        self,
        session: Session,
        *,
        ticket: Ticket,
        staff: StaffUser,
        read: Callable[[str], object],
        via: str = "dashboard",
    ) -> object:
        """Make the change as `staff`, reading each input by name with `read`."""
        arguments = {argument: read(name) for argument, name in self.inputs.items()}
        if self.versioned:
            arguments["expected_version"] = read("version")
        if self.says_via:
            arguments["via"] = via
        return self.change(session, ticket=ticket, staff=staff, **arguments)


def _same(*names: str) -> dict[str, str]:
    return {name: name for name in names}


ACKNOWLEDGE = TicketAction(lifecycle.acknowledge_ticket, says_via=True)
CHANGE_STATUS = TicketAction(
    lifecycle.change_status,
    _same("status", "question", "release_week", "rating", "comment"),
    says_via=True,
)
CLOSE = TicketAction(lifecycle.close_ticket, _same("rating", "comment"), says_via=True)
REOPEN = TicketAction(lifecycle.reopen_ticket)
CHANGE_CATEGORY = TicketAction(lifecycle.change_category, _same("category"))
ADD_NOTE = TicketAction(lifecycle.add_note, _same("text"), versioned=False)
LOG_TIME = TicketAction(lifecycle.log_time, _same("minutes", "note"))
APPROVE_RATE = TicketAction(lifecycle.record_rate_approval)
SET_RELEASE_WEEK = TicketAction(lifecycle.set_release_week, {"week": "release_week"})
