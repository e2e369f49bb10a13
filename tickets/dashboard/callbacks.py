"""The office voicemails: who is still to be called back, and marking them done."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from core.db import db, unit_of_work
from tickets import lifecycle
from tickets.auth import current_staff
from tickets.dashboard import bp, error_page
from tickets.forms import CalledBackForm
from tickets.models import CallbackRequest


@bp.get("/callbacks")
def callbacks():
    """List office voicemails: those still to call back first."""
    waiting = db.session.scalars(
        select(CallbackRequest)
        .where(CallbackRequest.called_back_at.is_(None))
        .order_by(CallbackRequest.created_at.desc(), CallbackRequest.id.desc())
        .limit(200)
    ).all()
    done = db.session.scalars(
        select(CallbackRequest)
        .where(CallbackRequest.called_back_at.is_not(None))
        .options(joinedload(CallbackRequest.called_back_by))
        .order_by(CallbackRequest.called_back_at.desc(), CallbackRequest.id.desc())
        .limit(50)
    ).all()
    return render_template(
        "support/callbacks.html", waiting=waiting, done=done, form=CalledBackForm()
    )


@bp.post("/callbacks/<id:callback_id>/called-back")
@unit_of_work
def called_back(callback_id: int):
    """Record that a voicemail's caller was called back."""
    callback = db.session.get(CallbackRequest, callback_id)
    if callback is None:
        return error_page("There is no such voicemail.", 404)
    try:
        lifecycle.mark_called_back(db.session, callback=callback, staff=current_staff())
    except lifecycle.LifecycleError as exc:
        flash(str(exc), "error")
    else:
        flash("Marked as called back.", "success")
    return redirect(url_for(".callbacks"), code=303)
