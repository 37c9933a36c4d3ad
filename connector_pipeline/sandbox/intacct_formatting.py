"""The sandbox API user's formatting preferences, and timestamps written and read with them.

Intacct writes timestamps as wall-clock text in the user's zone and date format
(`readUserFormatting`: dateformat such as `/mdY`, gmtoffset, 12/24-hour clock). The sandbox
keeps its own implementation so it cannot share a mistake with the client's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

_OFFSET = re.compile(r"^\s*(?:GMT|UTC)?\s*([+-])(\d{1,2}):?(\d{2})?\s*$", re.IGNORECASE)
_DATE_PARTS = {"m": "%m", "d": "%d", "y": "%Y", "Y": "%Y"}
# A sandbox may be configured with a date format a connector does not support (to test
# `ml-connector check`); its timestamps are then written as /mdY so the gateway still works.
_FALLBACK_DATE = "%m/%d/%Y"


@dataclass(frozen=True)
class SandboxFormatting:
    dateformat: str = "/mdY"
    gmtoffset: str = "+00:00"
    clock: str = "24"
    locale: str = "en_US"

    @property
    def tz(self) -> timezone:
        if not self.gmtoffset.strip():
            return UTC
        match = _OFFSET.match(self.gmtoffset)
        if not match:
            raise ValueError(f"unrecognised gmtoffset {self.gmtoffset!r}")
        sign, hours, minutes = match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
        return timezone(-delta if sign == "-" else delta)

    @property
    def date_pattern(self) -> str:
        separator, order = self.dateformat[:1], self.dateformat[1:]
        if len(order) != 3 or any(c not in _DATE_PARTS for c in order):
            return _FALLBACK_DATE
        return separator.join(_DATE_PARTS[c] for c in order)

    @property
    def timestamp_pattern(self) -> str:
        clock = "%I:%M:%S %p" if self.clock.strip() == "12" else "%H:%M:%S"
        return f"{self.date_pattern} {clock}"

    def format_timestamp(self, value: datetime) -> str:
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(self.tz).strftime(self.timestamp_pattern)

    def parse_timestamp(self, text: str) -> datetime:
        """Wall-clock text in the user's format (or ISO-8601) -> aware UTC datetime."""
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
