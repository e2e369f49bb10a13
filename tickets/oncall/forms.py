"""The On call page's forms; each carries a CSRF token."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, SelectField
from wtforms.validators import DataRequired

from tickets.models import ONCALL_LEVELS

LOCAL_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]


class OverrideForm(FlaskForm):
    """Let an engineer cover a level for a while, in place of the calendar."""

    level = SelectField(
        "Level",
        choices={str(level): f"Level {level}" for level in ONCALL_LEVELS},
        validators=[DataRequired()],
    )
    engineer = SelectField("Engineer", choices={}, validators=[DataRequired()])
    starts_at = DateTimeLocalField(
        "From (local time)", format=LOCAL_FORMATS, validators=[DataRequired()]
    )
    ends_at = DateTimeLocalField(
        "Until (local time)", format=LOCAL_FORMATS, validators=[DataRequired()]
    )


class RemoveOverrideForm(FlaskForm):
    """Remove an override."""


class FeedForm(FlaskForm):
    """Make a new calendar-feed URL for yourself, or end yours."""
