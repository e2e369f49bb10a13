import pytest
from flask import Flask
from werkzeug.datastructures import MultiDict
from wtforms import Form, SelectField
from wtforms.validators import DataRequired, Optional

from tickets.forms import FilterForm, LongSelectField

CHOICES = {"": "Any organisation", "1": 'Smith & "Sons" <BV>', "2": "Zeta", "30": "Ünïcode BV"}


class Stock(Form):
    organization = SelectField("Organisation", choices=CHOICES, validators=[Optional()])
    needed = SelectField("Needed", choices=CHOICES, validators=[DataRequired()])


class Long(Form):
    organization = LongSelectField("Organisation", choices=CHOICES, validators=[Optional()])
    needed = LongSelectField("Needed", choices=CHOICES, validators=[DataRequired()])


@pytest.mark.parametrize(
    "data", [{}, {"organization": "2"}, {"organization": "30", "needed": "1"}, {"needed": "9"}]
)
def test_long_select_renders_and_validates_exactly_like_wtforms(data):
    stock, long = Stock(MultiDict(data)), Long(MultiDict(data))
    assert long.validate() == stock.validate()
    assert long.errors == stock.errors
    assert long.organization() == stock.organization()
    assert long.needed() == stock.needed()
    assert long.organization(class_="wide") == stock.organization(class_="wide")


def test_long_select_leaves_grouped_choices_to_wtforms():
    grouped = {"Netherlands": {"1": "Acme"}, "Belgium": {"2": "Globex"}}

    class Stock(Form):
        organization = SelectField(choices=grouped)

    class Long(Form):
        organization = LongSelectField(choices=grouped)

    assert (
        Long(MultiDict({"organization": "2"})).organization()
        == Stock(MultiDict({"organization": "2"})).organization()
    )


def test_the_ticket_list_filters_by_organisation_with_the_long_select():
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "test-secret-key-0123456789abcdef"
    with app.test_request_context():
        form = FilterForm(MultiDict({"organization": "2"}))
        form.organization.choices = CHOICES
        assert form.validate()
        assert '<option selected value="2">Zeta</option>' in form.organization()
        form = FilterForm(MultiDict({"organization": "7"}))
        form.organization.choices = CHOICES
        assert not form.validate()
        assert "organization" in form.errors
