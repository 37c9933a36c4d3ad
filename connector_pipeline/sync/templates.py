"""The small template language of the mapping file: "{FIELD}" and dotted "{A.B.C}" paths."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from connector_pipeline.xml_chars import sanitize_xml_text

_FIELD = re.compile(r"\{([A-Za-z0-9_.]+)\}")


def field_value(record: Mapping[str, Any], path: str) -> Any:
    """A field by dotted path; accepts flat keys ("DISPLAYCONTACT.EMAIL1", as Intacct's
    query returns dotted selects) and nested dicts (as readByQuery returns them)."""
    if path in record:
        return record[path]
    node: Any = record
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def render(template: str, record: Mapping[str, Any], extra: Mapping[str, str] | None = None) -> str:
    """Fill a template; a missing field renders empty. Values are copied exactly: spaces,
    tabs, no-break spaces and line breaks are kept, and only characters XML 1.0 cannot
    carry are removed (DESIGN.md decision 11), so a name reads the same in Intacct, in the
    ledger and in Zendesk."""
    extra = extra or {}

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        if key in extra:
            return extra[key]
        found = field_value(record, key)
        return "" if found is None else str(found)

    return sanitize_xml_text(_FIELD.sub(value, template))


def blank(text: str) -> bool:
    """A rendered value with nothing but white space: treated as absent."""
    return not text.strip()
