"""Organization fields of the sandbox Zendesk, and what they do to organization values.

Shapes: organization_field_create_201.json and organization_fields_list_offset_page.json
(../shared/fixtures/zendesk). Types: text, textarea, integer, decimal, date, checkbox,
regexp and dropdown (`tagger`, with `custom_field_options`).

A dropdown value that is not among the field's options: reference/zendesk-api.md does
not say. Third-party reports (facetoe/zenpy#420, blakmatrix/node-zendesk#132) say
Zendesk drops such a value without an error and keeps the previous one, so the sandbox
does the same. Other types are validated the way their names say (an integer field
refuses "abc" with 422 RecordInvalid); that exact error text is UNCONFIRMED.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from connector_pipeline.sandbox.zendesk_errors import not_found, record_invalid

FIELD_TYPES = frozenset(
    {"text", "textarea", "integer", "decimal", "date", "checkbox", "regexp", "tagger", "dropdown"}
)
FIRST_FIELD_ID = 6_164_040_500_000
FIRST_OPTION_ID = 6_164_040_600_000
_KEY = re.compile(r"^[a-z0-9_]+$")


class OrganizationFields:
    def __init__(
        self, lock: threading.RLock, clock: Callable[[], float], url: Callable[[str], str]
    ) -> None:
        self.lock = lock
        self.clock = clock
        self.url = url
        self.fields: dict[int, dict[str, Any]] = {}
        self.next_id = FIRST_FIELD_ID
        self.next_option_id = FIRST_OPTION_ID

    def listed(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(f) for _, f in sorted(self.fields.items())]

    def get(self, field_id: int) -> dict[str, Any]:
        with self.lock:
            found = self.fields.get(field_id)
            if found is None:
                raise not_found()
            return dict(found)

    def create(self, body: Mapping[str, Any], iso: Callable[[float], str]) -> dict[str, Any]:
        with self.lock:
            kind = str(body.get("type") or "text")
            key = str(body.get("key") or "")
            title = str(body.get("title") or "")
            self._check_new(kind, key, title)
            field_id = self.next_id
            self.next_id += 1
            now = iso(self.clock())
            description = str(body.get("description") or "")
            field: dict[str, Any] = {
                "url": self.url(f"organization_fields/{field_id}"),
                "id": field_id,
                "type": "tagger" if kind == "dropdown" else kind,
                "key": key,
                "title": title,
                "description": description,
                "raw_title": title,
                "raw_description": description,
                "position": int(body.get("position", 9999)),
                "active": bool(body.get("active", True)),
                "system": False,
                "regexp_for_validation": body.get("regexp_for_validation"),
                "created_at": now,
                "updated_at": now,
            }
            if field["type"] == "tagger":
                field["custom_field_options"] = self._options(body)
            self.fields[field_id] = field
            return dict(field)

    def _check_new(self, kind: str, key: str, title: str) -> None:
        if kind not in FIELD_TYPES:
            raise record_invalid("type", f"Type: {kind} is not valid", "InvalidValue")
        if not key:
            raise record_invalid("key", "Key: cannot be blank", "BlankValue")
        if not _KEY.match(key):
            raise record_invalid("key", f"Key: {key} is invalid", "InvalidFormat")
        if any(f["key"] == key for f in self.fields.values()):
            raise record_invalid("key", f"Key: {key} has already been taken", "DuplicateValue")
        if not title:
            raise record_invalid("title", "Title: cannot be blank", "BlankValue")

    def _options(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        raw = body.get("custom_field_options") or []
        if not raw:
            # Seen for tagger ticket fields (zendesk_api_client_php#392).
            raise record_invalid(
                "custom_field_options",
                "Field options: must contain at least one option",
                "EmptyValue",
            )
        options = []
        for position, option in enumerate(raw):
            name = str(option.get("name") or "")
            value = str(option.get("value") or "")
            if not name or not value:
                raise record_invalid(
                    "custom_field_options", "Field options: name and value required", "BlankValue"
                )
            options.append(
                {
                    "id": self.next_option_id,
                    "name": name,
                    "raw_name": name,
                    "value": value,
                    "position": position,
                    "default": False,
                }
            )
            self.next_option_id += 1
        return options

    def apply(self, current: Mapping[str, Any], given: Any) -> dict[str, Any]:
        """The organization's `organization_fields` after writing `given` over `current`.

        Every defined field has a key (null when unset), as Zendesk shows them; unknown
        keys are ignored (UNCONFIRMED: Zendesk's answer to an unknown key)."""
        with self.lock:
            out = {f["key"]: current.get(f["key"]) for f in self.fields.values()}
            if not isinstance(given, Mapping):
                return out
            by_key = {f["key"]: f for f in self.fields.values()}
            for key, value in given.items():
                field = by_key.get(str(key))
                if field is None:
                    continue
                out[field["key"]] = self._value(field, value, out[field["key"]])
            return out

    @staticmethod
    def _value(field: Mapping[str, Any], value: Any, previous: Any) -> Any:
        if value is None or value == "":
            return None
        if field["type"] == "tagger":
            allowed = {o["value"] for o in field.get("custom_field_options", [])}
            return value if str(value) in allowed else previous
        check = _CHECKS.get(field["type"], _text)
        try:
            return check(field, value)
        except (ValueError, InvalidOperation):
            raise record_invalid(
                field["key"], f"{field['title']}: is invalid", "InvalidValue"
            ) from None


def _text(_field: Mapping[str, Any], value: Any) -> Any:
    return str(value)


def _checkbox(_field: Mapping[str, Any], value: Any) -> Any:
    if not isinstance(value, bool):
        raise ValueError("not a boolean")
    return value


def _integer(_field: Mapping[str, Any], value: Any) -> Any:
    if isinstance(value, bool) or not re.fullmatch(r"-?\d+", str(value).strip()):
        raise ValueError("not an integer")
    return int(value)


def _decimal(_field: Mapping[str, Any], value: Any) -> Any:
    Decimal(str(value))
    return value


def _date(_field: Mapping[str, Any], value: Any) -> Any:
    return date.fromisoformat(str(value)[:10]).isoformat()


def _regexp(field: Mapping[str, Any], value: Any) -> Any:
    pattern = field.get("regexp_for_validation")
    if pattern and not re.fullmatch(str(pattern), str(value)):
        raise ValueError("does not match")
    return str(value)


_CHECKS: dict[str, Callable[[Mapping[str, Any], Any], Any]] = {
    "checkbox": _checkbox,
    "integer": _integer,
    "decimal": _decimal,
    "date": _date,
    "regexp": _regexp,
}
