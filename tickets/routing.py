"""URL rules the dashboard and the API share: a row id is 1 to 10 digits within the id range."""

from __future__ import annotations

from werkzeug.routing import BaseConverter, ValidationError

from tickets.models import MAX_ID


class RowIdConverter(BaseConverter):
    """Match a row id in a URL (`<id:call_id>`); anything longer or larger is simply not found."""

    regex = r"[0-9]{1,10}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 0 < number <= MAX_ID:
            raise ValidationError()
        return number

    def to_url(self, value: int) -> str:
        return str(int(value))
