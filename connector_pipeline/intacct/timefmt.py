"""Intacct timestamps: wall-clock text in the API user's zone and format.

`readUserFormatting` tells which (date order and separator, 12/24-hour clock, GMT
offset); `UserFormatting` converts both ways so that everything above the client sees
aware UTC datetimes only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

_OFFSET = re.compile(r"^\s*(?:GMT|UTC)?\s*([+-])(\d{1,2}):?(\d{2})?\s*$", re.IGNORECASE)
_DATE_PARTS = {"m": "%m", "d": "%d", "y": "%Y", "Y": "%Y"}


def parse_gmt_offset(text: str) -> timezone:
    """`+09:30`, `-08:00`, `GMT-8` -> a fixed-offset tzinfo (empty means UTC)."""
    if not text.strip():
        return UTC
    match = _OFFSET.match(text)
    if not match:
        raise ValueError(f"unrecognised gmtoffset {text!r}")
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
    return timezone(-delta if sign == "-" else delta)


@dataclass(frozen=True)
class UserFormatting:
    """The API user's preferences; the defaults are what Sage's docs use (en_US, /mdY, 24h)."""

    locale: str = "en_US"
    dateformat: str = "/mdY"
    gmtoffset: str = "+00:00"
    clock: str = "24"

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> UserFormatting:
        lowered = {str(k).lower(): v for k, v in record.items()}

        def pick(name: str, default: str) -> str:
            value = lowered.get(name)
            return str(value).strip() if isinstance(value, str) and value.strip() else default

        return cls(
            locale=pick("locale", cls.locale),
            dateformat=pick("dateformat", cls.dateformat),
            gmtoffset=pick("gmtoffset", cls.gmtoffset),
            clock=pick("clock", cls.clock),
        )

    @property
    def tz(self) -> timezone:
        return parse_gmt_offset(self.gmtoffset)

    @property
    def date_pattern(self) -> str:
        separator, order = self.dateformat[:1], self.dateformat[1:]
        if len(order) != 3 or any(c not in _DATE_PARTS for c in order):
            raise ValueError(f"unsupported dateformat {self.dateformat!r}")
        return separator.join(_DATE_PARTS[c] for c in order)

    @property
    def timestamp_pattern(self) -> str:
        clock = "%I:%M:%S %p" if self.clock.strip() == "12" else "%H:%M:%S"
        return f"{self.date_pattern} {clock}"

    def format_timestamp(self, value: datetime) -> str:
        """An aware datetime as the user's wall-clock text (naive values are taken as UTC)."""
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(self.tz).strftime(self.timestamp_pattern)

    def format_date(self, value: date) -> str:
        return value.strftime(self.date_pattern)

    def parse_date(self, text: str) -> date:
        """A date-only value in the user's date format (ISO-8601 accepted too)."""
        stripped = text.strip()
        try:
            return datetime.strptime(stripped, self.date_pattern).date()
        except ValueError:
            return date.fromisoformat(stripped[:10])

    def parse_timestamp(self, text: str) -> datetime:
        """User wall-clock text -> aware UTC datetime. ISO-8601 with an offset is accepted too."""
        stripped = text.strip()
        for pattern in (self.timestamp_pattern, self.date_pattern):
            try:
                naive = datetime.strptime(stripped, pattern)
            except ValueError:
                continue
            return naive.replace(tzinfo=self.tz).astimezone(UTC)
        parsed = datetime.fromisoformat(stripped)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=self.tz)
        return parsed.astimezone(UTC)


def format_value(value: Any, formatting: UserFormatting) -> str:
    """How a Python value is written in a request (filters, record fields)."""
    if isinstance(value, datetime):
        return formatting.format_timestamp(value)
    if isinstance(value, date):
        return formatting.format_date(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
