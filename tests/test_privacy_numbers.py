"""Privacy: a person's numbers are found in free text however a colleague typed them, by export
and erase alike, and digits that are not their number (ticket numbers, dates, someone else's
number, a longer reference) are left as they are.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select

from ivr.privacy.numbers import number_spans
from tickets.models import Contact, ContactPhone, Organization, StaffUser, Ticket, TicketEvent

EMAIL, NAME = "sanne@acme.example", "Sanne Visser"
MOBILE, PIET_MOBILE = "+31611110000", "+31622220000"


@pytest.fixture
def privacy(cli, app, settings):
    """Run `ivr privacy ...` on the test database and journal, at the test's clock."""
    env = {"IVR_JOURNAL_PATH": str(settings.resolved_journal_path)}

    def run(*args: str):
        with app.app_context():
            return cli("privacy", *args, env=env)

    return run


# Notes on Piet's ticket naming Sanne's mobile (+31611110000) as people type it, and what each
# becomes; beside them, texts whose digits are no number of hers and must stay as they are.
HER_MOBILE_WRITTEN = {
    "Teruggebeld op 06-11110000": "Teruggebeld op [erased]",
    "Nummer 0031611110000 doorgegeven": "Nummer [erased] doorgegeven",
    "Bel +31 6 1111 0000 na 14:00": "Bel [erased] na 14:00",
    "Mobiel: 06-1111 0000.": "Mobiel: [erased].",
    "Zie ticket 100003 (06-1111 0000)": "Zie ticket 100003 ([erased])",
    "Via +31 (0)6 1111 0000, 2026-12-07": "Via [erased], 2026-12-07",
    "Ticket 100003 06 11110000 2026-12-07": "Ticket 100003 [erased] 2026-12-07",
    "sms naar 0611110000/06-22220000": "sms naar [erased]/06-22220000",
}
NOT_HER_NUMBER = [
    "Ticket 100003 van 07-12-2026 om 10:30, zie ook ticket 100004",
    "Piet belde van 06-2222 0000 en +31 6 2222 0000",
    "Kenmerk 0611110000123, factuur 2026-0042",
    "Bedrag 611110000 cent",
]


def test_her_number_is_erased_from_free_text_however_it_was_typed(session, clock, privacy):
    acme = Organization(name="Acme")
    sanne = Contact(organization=acme, name=NAME, email=EMAIL, role="super_user")
    sanne.phones = [ContactPhone(number=MOBILE)]
    piet = Contact(organization=acme, name="Piet Bos", email="piet@acme.example", role="key_user")
    pieters = Ticket(organization=acme, contact=piet, caller=PIET_MOBILE)
    anna = StaffUser(email="anna@otys.test", name="Anna Jansen", password_hash="x")
    session.add_all([sanne, pieters, anna])
    session.flush()
    notes = [*HER_MOBILE_WRITTEN, *NOT_HER_NUMBER]
    session.add_all(TicketEvent(ticket=pieters, kind="note", detail=n, staff=anna) for n in notes)
    session.commit()

    exported = json.loads(privacy("export", EMAIL).stdout)
    assert sorted(row["text"] for row in exported["mentioned_elsewhere"]) == sorted(
        HER_MOBILE_WRITTEN
    )

    result = privacy("erase", EMAIL)

    assert result.exit_code == 0, result.output
    assert f"other rows naming them (free text): {len(HER_MOBILE_WRITTEN)}" in result.stdout
    session.expire_all()
    details = session.scalars(select(TicketEvent.detail).order_by(TicketEvent.id)).all()
    assert details == [*HER_MOBILE_WRITTEN.values(), *NOT_HER_NUMBER]


# ------------------------------------------------------------------ any grouping, any prefix

PROPERTY = hypothesis_settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
PREFIXES = ["0", "0031", "+31", "+31 (0)", "0031 ", "+31 ", "(0"]
SEPARATORS = [" ", "-", ".", "/", "  ", " - ", "\u00a0", "\u2013"]


@st.composite
def written(draw, digits: str) -> str:
    """Draw a notation of a Dutch number: a prefix, then its digits in groups."""
    prefix = draw(st.sampled_from(PREFIXES))
    cuts = sorted(draw(st.sets(st.integers(1, len(digits) - 1), max_size=4)))
    groups = [digits[a:b] for a, b in zip([0, *cuts], [*cuts, len(digits)], strict=True)]
    separators = [draw(st.sampled_from(SEPARATORS)) for _ in groups[1:]]
    text = prefix + groups[0] + "".join(s + g for s, g in zip(separators, groups[1:], strict=True))
    return text + ")" if prefix == "(0" else text


@PROPERTY
@given(
    notation=written("611110000"),
    before=st.sampled_from(["", "Bel ", "ticket 100003 ", "2026-12-07 ", "tel:", "Sanne: "]),
    after=st.sampled_from(["", ".", " na 14:00", " 2026-12-07", ", ticket 100004", "/06-22220000"]),
)
def test_her_number_is_found_in_any_grouping_after_any_usual_prefix(notation, before, after):
    text = before + notation + after
    spans = number_spans(text, [MOBILE])
    assert len(spans) >= 1, text
    start, end = spans[0][0], max(end for _, end in spans)
    # The whole notation is found, and nothing of the text around it.
    assert text[start:end].strip("()") == notation.strip("()"), text


def digits(text: str) -> str:
    return "".join(character for character in text if character.isdigit())


@PROPERTY
@given(
    text=st.one_of(
        st.integers(100000, 999999).map(lambda n: f"ticket {n}"),
        st.dates().map(lambda d: f"{d:%Y-%m-%d} {d:%d-%m-%Y} {d:%d.%m.%Y}"),
        written("622220000"),
        # her digits with one more glued on: a longer reference, not her number
        written("611110000").filter(lambda t: t[0] == "0").map(lambda t: t + "1"),
        written("611110000").filter(lambda t: t[0] == "0").map(lambda t: "1" + t),
        st.from_regex(r"[0-9 .\-/]{1,30}", fullmatch=True).filter(
            lambda t: MOBILE[3:] not in digits(t)
        ),
    )
)
def test_digits_that_are_not_her_number_are_never_found(text):
    assert number_spans(text, [MOBILE]) == [], text
