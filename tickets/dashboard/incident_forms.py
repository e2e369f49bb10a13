"""The forms of the incident pages; each carries a CSRF token."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from tickets.incidents.grouping import MAX_SUMMARY
from tickets.incidents.telling import MAX_UPDATE


class OpenIncidentForm(FlaskForm):
    """Open a major incident by hand, before or after the first reports."""

    summary = TextAreaField(
        "Summary (what callers hear until the first update)",
        validators=[DataRequired(), Length(max=MAX_SUMMARY)],
    )


class IncidentUpdateForm(FlaskForm):
    """Post an update: texted to the incident's callers, heard by new callers."""

    text = TextAreaField(
        "Update (texted to every caller who may be texted; new callers hear it)",
        validators=[DataRequired(), Length(max=MAX_UPDATE)],
    )


class ResolveIncidentForm(FlaskForm):
    """Resolve an incident and tell its callers."""

    text = TextAreaField(
        "What to tell the callers (optional)", validators=[Optional(), Length(max=MAX_UPDATE)]
    )
    resolve_tickets = BooleanField("Resolve its open tickets too (else they stay open)")


class IncidentActionForm(FlaskForm):
    """Acknowledge an incident (a form, for its CSRF token)."""
