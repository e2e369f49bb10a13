"""The ticket list: open urgent call-tickets first, filtered as staff ask."""

from __future__ import annotations

from datetime import timedelta

from flask import render_template, request
from sqlalchemy import select

from core.db import db
from core.settings import current_settings
from tickets.dashboard import bp
from tickets.dashboard.display import day_start
from tickets.dashboard.messages import recent_failures
from tickets.forms import FilterForm
from tickets.models import Organization
from tickets.queue import QueueFilter, latest_ticket_id, list_queue

FILTER_FIELDS = ("q", "status", "priority", "reason", "organization", "created_from", "created_to")
PER_PAGE = 50
# The list pages through its newest 10,000 tickets (as the API does): deeper pages would make
# the database walk past every newer row. A deeper page shows the last one, with a hint.
MAX_PAGE = 10_000 // PER_PAGE


def queue_filter(form: FilterForm) -> QueueFilter:
    """Return the filter staff asked for, ignoring fields that did not validate."""
    valid = form.validate()
    errors = form.errors if not valid else {}

    def value(name: str):
        return None if name in errors else (getattr(form, name).data or None)

    organization = value("organization")
    created_from = value("created_from")
    created_to = value("created_to")
    return QueueFilter(
        status=value("status"),
        priority=value("priority"),
        reason=value("reason"),
        organization_id=int(organization) if organization and organization.isdigit() else None,
        created_from=day_start(created_from) if created_from else None,
        created_before=day_start(created_to + timedelta(days=1)) if created_to else None,
        search=(value("q") or "").strip() or None,
        region=current_settings().holiday_country,
    )


@bp.get("", strict_slashes=False)
def tickets():
    """Show the ticket queue: open urgent call-tickets first, then newest first."""
    form = FilterForm(request.args)
    organisations = db.session.execute(
        select(Organization.id, Organization.name).order_by(Organization.name).limit(2000)
    ).all()
    form.organization.choices = {"": "Any organisation"} | {
        str(org_id): name for org_id, name in organisations
    }
    filters = queue_filter(form)
    asked = max(request.args.get("page", default=1, type=int) or 1, 1)
    page = min(asked, MAX_PAGE)
    result = list_queue(db.session, filters, page=page, per_page=PER_PAGE)
    # Only the filters go into the paging links: other names (say `endpoint`) are no arguments.
    args = {name: request.args[name] for name in FILTER_FIELDS if request.args.get(name)}
    return render_template(
        "support/tickets.html",
        form=form,
        result=result,
        args=args,
        filtered=bool(args),
        latest_id=latest_ticket_id(db.session),
        failed_messages=recent_failures(),
        last_page=MAX_PAGE if page == MAX_PAGE else None,
        too_deep=asked > MAX_PAGE,
    )
