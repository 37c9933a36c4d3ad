"""Records as Intacct answers write them: elements in field order, timestamps as the
user's wall-clock text, nested objects (DISPLAYCONTACT.MAILADDRESS) as nested elements."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from lxml import etree

from connector_pipeline.sandbox.intacct_envelope import sub
from connector_pipeline.sandbox.intacct_formatting import SandboxFormatting

_TIMESTAMP_CACHE_SIZE = 100_000


class Renderer:
    def __init__(self, formatting: Callable[[], SandboxFormatting]) -> None:
        # A callable: the scenario API can change the user's preferences at any time.
        self.formatting = formatting
        self._timestamps: dict[tuple[SandboxFormatting, datetime], str] = {}

    def timestamp(self, value: datetime) -> str:
        # Rendering a 2,000-record page formats many equal timestamps: cache the text.
        formatting = self.formatting()
        cached = self._timestamps.get((formatting, value))
        if cached is None:
            if len(self._timestamps) > _TIMESTAMP_CACHE_SIZE:
                self._timestamps.clear()
            cached = formatting.format_timestamp(value)
            self._timestamps[(formatting, value)] = cached
        return cached

    def record(
        self, parent: etree._Element, tag: str, record: Mapping[str, Any], fields: Sequence[str]
    ) -> None:
        """`record` as `<tag>` with exactly `fields` (dotted ones nested), in that order."""
        el = sub(parent, tag)
        for path in fields:
            parts = path.split(".")
            target = el
            for part in parts[:-1]:
                existing = target.find(part)
                target = existing if existing is not None else sub(target, part)
            value: Any = record
            for part in parts:
                value = value.get(part) if isinstance(value, dict) else None
            self.value(target, parts[-1], value)

    def value(self, parent: etree._Element, name: str, value: Any) -> None:
        if isinstance(value, dict):
            el = sub(parent, name)
            for key, inner in value.items():
                self.value(el, key, inner)
        elif isinstance(value, list):
            for item in value:
                self.value(parent, name, item)
        elif isinstance(value, datetime):
            sub(parent, name, self.timestamp(value))
        elif isinstance(value, date):
            # Date-only fields (WHENDUE, WHENPAID) in the user's date format, no zone.
            sub(parent, name, value.strftime(self.formatting().date_pattern))
        elif isinstance(value, bool):
            sub(parent, name, "true" if value else "false")
        elif value is None:
            sub(parent, name)
        else:
            sub(parent, name, str(value))
