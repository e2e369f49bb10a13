"""Find a person's phone numbers in free text, however a colleague typed them.

phonenumbers' `PhoneNumberMatcher` finds numbers in the usual notations (`06-12345678`,
`0031612345678`, `+31 6 1234 5678`, `+31 (0)6 ...`), and the ones that are theirs are kept. The
matcher takes a run of digit groups for one candidate, though, and finds nothing in
`ticket 100003 06 12345678`: so each run of digits and separators is also looked through for the
person's own digits, group by group, in the forms phonenumbers gives for their number (national,
and international after `+` or `00`). Nothing else is taken for a number: a ticket number or a
date is never theirs, and a run with more digits on either side is someone else's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import phonenumbers
from sqlalchemy import ColumnElement, func

from core.phones import DEFAULT_REGION

# What people put between the digits of a number: spaces, dashes, dots, slashes, brackets.
SEPARATORS = (" ", "\u00a0", "\t", "\n", "\r", "-", ".", "/", "(", ")")
SEPARATORS += ("\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212")  # typographic dashes
# A number written with separators is at most this long; a longer stretch is not one number.
LONGEST_NOTATION = 32


def written_forms(number: str) -> set[str]:
    """Return the digit strings (a leading `+` where written) an E.164 number is typed as."""
    parsed = phonenumbers.parse(number, None)
    country = str(parsed.country_code)
    significant = phonenumbers.national_significant_number(parsed)
    national = phonenumbers.normalize_digits_only(
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    )
    abroad = phonenumbers.PhoneMetadata.metadata_for_region(DEFAULT_REGION).international_prefix
    trunk = national.removesuffix(significant) if national.endswith(significant) else ""
    forms = {national}
    for prefix in ("+", abroad):
        forms.update({prefix + country + significant, prefix + country + trunk + significant})
    return forms


def significant_digits(number: str) -> str:
    """Return the digits every notation of the number holds in one piece, separators aside."""
    return phonenumbers.national_significant_number(phonenumbers.parse(number, None))


def without_separators(column) -> ColumnElement:
    """Return a column's text without the separators, for a database to look for digits in."""
    for separator in SEPARATORS:
        column = func.replace(column, separator, "")
    return column


def _matched(text: str, numbers: set[str]) -> Iterator[tuple[int, int]]:
    """Yield the spans of the numbers phonenumbers' matcher finds that are one of `numbers`."""
    for match in phonenumbers.PhoneNumberMatcher(text, DEFAULT_REGION):
        if phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164) in numbers:
            # The matcher takes an opening bracket into the number; leave a closing one alone.
            start = match.start + (match.raw_string.startswith("(") and ")" not in match.raw_string)
            yield start, match.end


def _is_digit(character: str) -> bool:
    return bool(phonenumbers.normalize_digits_only(character))


def _runs(text: str) -> Iterator[tuple[int, int]]:
    """Yield each stretch of digits and separators that starts with a digit or `+`, ends a digit."""
    position, length = 0, len(text)
    while position < length:
        if not (_is_digit(text[position]) or text[position] == "+"):
            position += 1
            continue
        start, last, position = position, position, position + 1
        while position < length and (_is_digit(text[position]) or text[position] in SEPARATORS):
            last = position if _is_digit(text[position]) else last
            position += 1
        yield start, last + 1


def _grouped(text: str, forms: set[str]) -> Iterator[tuple[int, int]]:
    """Yield the spans, from a group's start to a group's end, whose digits are one of `forms`."""
    for run_start, run_end in _runs(text):
        ends = [p for p in range(run_start + 1, run_end + 1) if _ends_group(text, p, run_end)]
        taken = run_start
        for start in range(run_start, run_end):
            if start < taken or not _starts_group(text, start, run_start):
                continue
            within = [end for end in ends if start < end <= start + LONGEST_NOTATION]
            end = next((end for end in reversed(within) if _digits(text[start:end]) in forms), None)
            if end is not None:
                yield start, end
                taken = end


def _digits(written: str) -> str:
    """Return the digits of a written number, after its `+` if it starts with one."""
    return ("+" if written.startswith("+") else "") + phonenumbers.normalize_digits_only(written)


def _starts_group(text: str, position: int, run_start: int) -> bool:
    first = _is_digit(text[position]) or text[position] == "+"
    return first and (position == run_start or text[position - 1] in SEPARATORS)


def _ends_group(text: str, position: int, run_end: int) -> bool:
    return _is_digit(text[position - 1]) and (position == run_end or text[position] in SEPARATORS)


def number_spans(text: str, numbers: Iterable[str]) -> list[tuple[int, int]]:
    """Return where in `text` any of the E.164 `numbers` is written (spans may overlap)."""
    numbers = set(numbers)
    if not numbers or not any(_is_digit(character) for character in text):
        return []
    forms = set().union(*(written_forms(number) for number in numbers))
    return sorted({*_matched(text, numbers), *_grouped(text, forms)})
