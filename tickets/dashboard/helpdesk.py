"""The helpdesk events on the settings page: receivers, recent deliveries, and an admin's
redelivery or re-enabling, each on the audit trail."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, url_for

from core.db import db
from tickets.auth import current_staff
from tickets.dashboard import bp, error_page, require_admin
from tickets.forms import HelpdeskActionForm
from tickets.helpdesk import deliveries
from tickets.helpdesk.events import policy


def helpdesk_section() -> dict:
    """Return what the settings page shows of the helpdesk events."""
    rules = policy()
    held = deliveries.disabled_receivers(db.session)
    return {
        "helpdesk_receivers": [
            {
                "name": receiver.name,
                "address": receiver.address,
                "events": sorted(receiver.events),
                "disabled": held.get(receiver.name),
            }
            for receiver in rules.receivers
        ],
        "helpdesk_waiting": deliveries.waiting(db.session),
        "helpdesk_deliveries": deliveries.recent(db.session) if rules.receivers else [],
        "helpdesk_form": HelpdeskActionForm(formdata=None),
    }


def _checked_form() -> None:
    require_admin()
    if not HelpdeskActionForm().validate():
        abort(400)


@bp.post("/settings/helpdesk/deliveries/<id:delivery_id>/redeliver")
def redeliver_helpdesk_event(delivery_id: int):
    """Send one helpdesk event again, under its own webhook-id (admins)."""
    _checked_form()
    try:
        row = deliveries.redeliver(
            db.session,
            delivery_id=delivery_id,
            actor=current_staff().email,
            retry_for=policy().retry_for,
        )
    except deliveries.DeliveryError as exc:
        db.session.rollback()
        return error_page(str(exc), 409)
    flash(f"The {row.type} event goes to {row.receiver} again within seconds.", "success")
    return redirect(url_for(".settings", _anchor="helpdesk"), code=303)


@bp.post("/settings/helpdesk/<name>/enable")
def enable_helpdesk_receiver(name: str):
    """Switch a receiver that answered 410 on again; its waiting events go out in order (admins)."""
    _checked_form()
    if name not in policy().names:
        return error_page("There is no such receiver in the configuration.", 404)
    try:
        deliveries.enable_receiver(db.session, name=name, actor=current_staff().email)
    except deliveries.DeliveryError as exc:
        db.session.rollback()
        return error_page(str(exc), 409)
    current_app.logger.info("helpdesk receiver %s enabled by %s", name, current_staff().email)
    flash(f"Helpdesk events go to {name} again, the waiting ones first.", "success")
    return redirect(url_for(".settings", _anchor="helpdesk"), code=303)
