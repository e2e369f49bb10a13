"""The dashboard's forms; each carries a CSRF token, ticket forms also the version they show."""

from __future__ import annotations

from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import (
    DateField,
    DateTimeLocalField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)
from wtforms.widgets import Select
from wtforms.widgets.core import html_params

from tickets.availability import ANNOUNCEMENT_MAX_LENGTH
from tickets.labels import HOURS_MODES, REASON_LABELS, STATUS_LABELS
from tickets.lifecycle import MAX_MINUTES_PER_ENTRY
from tickets.models import CATEGORIES, PRIORITIES, REASONS, STAFF_ROLES
from tickets.staff import (
    MAX_EMAIL_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PASSWORD_LENGTH,
    MAX_TOKEN_DAYS,
    TOKEN_DAYS,
)


class LoginForm(FlaskForm):
    """Staff sign-in."""

    email = StringField("E-mail address", validators=[DataRequired(), Length(max=320)])
    password = PasswordField(
        "Password", validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)]
    )


class LogoutForm(FlaskForm):
    """Sign out (a form, so another site cannot sign staff out)."""


class LongSelect(Select):
    """Render a flat `<select>` of thousands of plain options, such as every organisation.

    WTForms builds, normalises and escapes each option through generic machinery, which was
    most of the ticket list's CPU with a few thousand organisations. For a flat dict of
    string labels this writes the very same HTML in one pass; anything else goes to WTForms.
    """

    def __call__(self, field, **kwargs):
        choices = field.choices
        plain = isinstance(choices, dict) and all(isinstance(v, str) for v in choices.values())
        if self.multiple or not plain:
            return super().__call__(field, **kwargs)
        kwargs.setdefault("id", field.id)
        flags = getattr(field, "flags", {})
        for key in dir(flags):
            if key in self.validation_attrs and key not in kwargs:
                kwargs[key] = getattr(flags, key)
        html = [f"<select {html_params(name=field.name, **kwargs)}>"]
        for value, label in choices.items():
            selected = " selected" if field.coerce(value) == field.data else ""
            html.append(
                f'<option{selected} value="{escape(value)}">{escape(label or value)}</option>'
            )
        html.append("</select>")
        return Markup("".join(html))  # noqa: S704 - every value and label is escaped above


class LongSelectField(SelectField):
    """A flat `SelectField` for thousands of choices: checked and rendered in one pass each."""

    widget = LongSelect()

    def pre_validate(self, form):
        if self.process_errors or not self.validate_choice or not isinstance(self.choices, dict):
            return super().pre_validate(form)
        if not any(self.coerce(value) == self.data for value in self.choices):
            message = getattr(self, "invalid_choice_message", None)
            raise ValidationError(message or self.gettext("Not a valid choice."))
        return None


def within_years(form, field) -> None:
    """Refuse dates far outside the tickets' years (and the limits of date arithmetic)."""
    if field.data is not None and not 2000 <= field.data.year <= 2199:
        raise ValidationError("Give a date between 2000 and 2199.")


class FilterForm(FlaskForm):
    """Filters and search of the ticket list (a GET form: no CSRF token needed)."""

    class Meta:
        csrf = False

    q = StringField("Search", validators=[Optional(), Length(max=100)])
    status = SelectField(
        "Status",
        choices={"": "Any status", "open": "Any open status", **STATUS_LABELS},
        validators=[Optional()],
    )
    priority = SelectField(
        "Priority",
        choices={"": "Any priority", **{p: p.capitalize() for p in PRIORITIES}},
        validators=[Optional()],
    )
    reason = SelectField(
        "Reason",
        choices={"": "Any reason", **{r: REASON_LABELS[r] for r in REASONS}},
        validators=[Optional()],
    )
    organization = LongSelectField(
        "Organisation", choices={"": "Any organisation"}, validators=[Optional()]
    )
    created_from = DateField("Created from", validators=[Optional(), within_years])
    created_to = DateField("Created until", validators=[Optional(), within_years])


class StatisticsForm(FlaskForm):
    """The period of the statistics page: local days from and to, both included (GET form)."""

    class Meta:
        csrf = False

    first = DateField("From", name="from", validators=[Optional(), within_years])
    last = DateField("To", name="to", validators=[Optional(), within_years])


class VersionedForm(FlaskForm):
    """A change to a ticket, made on the version the page showed."""

    version = HiddenField()


class AcknowledgeForm(VersionedForm):
    """Acknowledge a ticket and assign it to me."""


class StatusForm(VersionedForm):
    """Move a ticket to another status, with what that status needs."""

    status = SelectField("New status", choices=dict(STATUS_LABELS), validate_choice=False)
    question = TextAreaField(
        "Question asked to the customer", validators=[Optional(), Length(max=2000)]
    )
    release_week = StringField("Release week (YYYY-Www)", validators=[Optional(), Length(max=10)])
    rating = SelectField(
        "Customer's rating",
        choices={"": "—", **{str(n): str(n) for n in range(1, 6)}},
        validate_choice=False,
    )
    comment = TextAreaField("Customer's comment", validators=[Optional(), Length(max=5000)])


class CategoryForm(VersionedForm):
    """Change a ticket's category."""

    category = SelectField(
        "Category", choices={c: c.capitalize() for c in CATEGORIES}, validate_choice=False
    )


class NoteForm(FlaskForm):
    """Add an internal note."""

    text = TextAreaField("Internal note", validators=[DataRequired(), Length(max=5000)])


class TimeForm(VersionedForm):
    """Log minutes of work."""

    minutes = IntegerField(
        "Minutes",
        validators=[
            InputRequired(message="Enter the minutes worked."),
            NumberRange(
                min=1,
                max=MAX_MINUTES_PER_ENTRY,
                message=f"Minutes must be between 1 and {MAX_MINUTES_PER_ENTRY} per entry.",
            ),
        ],
    )
    note = StringField("What was done", validators=[Optional(), Length(max=1000)])


class RateApprovalForm(VersionedForm):
    """Record that the customer approved the standard rate."""


class ReleaseWeekForm(VersionedForm):
    """Change the release week of a planned ticket."""

    release_week = StringField(
        "Release week (YYYY-Www)", validators=[DataRequired(), Length(max=10)]
    )


class ReopenForm(VersionedForm):
    """Reopen a closed ticket (admins)."""


class CalledBackForm(FlaskForm):
    """Mark an office voicemail as called back."""


class CallBackForm(FlaskForm):
    """Call a ticket's caller back: which request of the queue (else the oldest), and where to."""

    request = IntegerField(validators=[Optional(), NumberRange(min=1, max=2**31 - 1)])
    incident = IntegerField(validators=[Optional(), NumberRange(min=1, max=2**31 - 1)])


class HoursOverrideForm(FlaskForm):
    """Force both lines open or closed, or follow the schedule."""

    mode = SelectField(
        "Working hours",
        choices=HOURS_MODES,
    )


class AnnouncementForm(FlaskForm):
    """Post a known-outage announcement for emergency callers."""

    text_nl = TextAreaField(
        "Announcement in Dutch", validators=[DataRequired(), Length(max=ANNOUNCEMENT_MAX_LENGTH)]
    )
    text_en = TextAreaField(
        "Announcement in English (optional)",
        validators=[Optional(), Length(max=ANNOUNCEMENT_MAX_LENGTH)],
    )
    expires_at = DateTimeLocalField(
        "Expires at (local time, optional)",
        format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
        validators=[Optional()],
    )


class EndAnnouncementForm(FlaskForm):
    """End an announcement now."""


class HelpdeskActionForm(FlaskForm):
    """Redeliver a helpdesk event, or enable a receiver again (admins): the CSRF token only."""


class StaffAccountForm(FlaskForm):
    """A staff account's name, e-mail address, role and phone number (admins)."""

    name = StringField("Name", validators=[DataRequired(), Length(max=MAX_NAME_LENGTH)])
    email = StringField("E-mail address", validators=[DataRequired(), Length(max=MAX_EMAIL_LENGTH)])
    role = SelectField("Role", choices={role: role.capitalize() for role in STAFF_ROLES})
    phone = StringField(
        "Phone (optional: an engineer the rota can ring)",
        validators=[Optional(), Length(max=40)],
    )


def new_password_field(label: str) -> PasswordField:
    """Return a password field an admin may leave empty to have a password generated."""
    return PasswordField(
        f"{label} (leave empty to generate one)",
        validators=[Optional(), Length(max=MAX_PASSWORD_LENGTH)],
        render_kw={"autocomplete": "new-password"},
    )


class NewStaffForm(StaffAccountForm):
    """Add a staff account with the admin's password or a generated one."""

    password = new_password_field("Initial password")


class PasswordResetForm(FlaskForm):
    """Give an account a new password; its sessions end."""

    password = new_password_field("New password")


class TokenForm(FlaskForm):
    """Issue a new API bearer token for an account."""

    days = IntegerField(
        "Valid for (days)",
        default=TOKEN_DAYS,
        validators=[
            InputRequired(message="Enter for how many days the token works."),
            NumberRange(
                min=1,
                max=MAX_TOKEN_DAYS,
                message=f"A token works for 1 to {MAX_TOKEN_DAYS} days.",
            ),
        ],
    )


class StaffActionForm(FlaskForm):
    """Deactivate or reactivate an account, or revoke tokens: a button with a CSRF token."""
