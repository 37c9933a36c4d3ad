"""Parse Zendesk webhook bodies into `WebhookEvent`s, with the ticket in REST API shape.

Two shapes are understood:

* event-subscribed webhooks: the `zen:event-type:*` envelope (`type`, `id`, `time`,
  `subject`, `detail`, `event`), whose `detail` carries ids as strings and enums in upper
  case (reference/zendesk-api.md, 6.4);
* trigger webhooks using the JSON template documented in docs/webhooks.md:
  `{"ml_connector": 1, "event": "ticket.updated", "ticket": {...}}`, whose values are
  rendered placeholders (strings, title-case enums, possibly localized, empty when unset).

Only values that can be read without guessing are put in `ticket`; anything else stays in
`raw`, and `complete` says whether the ticket can be staged without fetching it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

EVENT_TYPE_PREFIX = "zen:event-type:"
TICKET_SUBJECT_PREFIX = "zen:ticket:"
TEMPLATE_MARKER = "ml_connector"
TEMPLATE_VERSION = 1
SOURCE_EVENT = "event"
SOURCE_TRIGGER = "trigger"

# Ticket fields that must be present for a delivery to stand in for a fetched ticket.
REQUIRED_FOR_COMPLETE = ("id", "status", "updated_at")
# Present as a key, even when null: a ticket without an organization is a real answer.
# The subject too: the trigger template leaves free text out (docs/webhooks.md, option B),
# and staging such a delivery as it is would blank the subject of the Intacct record, so
# those deliveries are fetched from the API instead.
REQUIRED_KEYS_FOR_COMPLETE = ("organization_id", "subject")

# Events after which the REST API reports the ticket as `"status": "deleted"`.
DELETION_EVENT_TYPES = frozenset({"ticket.soft_deleted", "ticket.permanently_deleted"})

_STATUSES = {
    "new": "new",
    "open": "open",
    "pending": "pending",
    "hold": "hold",
    "on-hold": "hold",
    "on_hold": "hold",
    "on hold": "hold",
    "solved": "solved",
    "closed": "closed",
    "deleted": "deleted",
}
_PRIORITIES = {p: p for p in ("low", "normal", "high", "urgent")}
# `{{ticket.ticket_type}}` renders "Ticket" when no type is set.
_TYPES = {"problem": "problem", "incident": "incident", "question": "question", "task": "task"}
_NO_TYPE = {"ticket", ""}

_ID_FIELDS = (
    "id",
    "organization_id",
    "requester_id",
    "submitter_id",
    "assignee_id",
    "group_id",
    "brand_id",
    "ticket_form_id",
    "custom_status_id",
    "problem_id",
)
# Event `detail` names that differ from the REST API's.
_DETAIL_RENAMES = {"form_id": "ticket_form_id", "custom_status": "custom_status_id"}
_TIMESTAMP_FIELDS = ("created_at", "updated_at", "due_at")
_NULLABLE_TEXT_FIELDS = ("external_id",)
_MAX_ID = 2**63 - 1  # the ledger's BIGINT
_TIMESTAMP_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


class WebhookPayloadError(ValueError):
    """The body is JSON but not a webhook payload this connector understands."""


@dataclass(frozen=True)
class WebhookEvent:
    """One delivery, parsed. `event_type` drops the `zen:event-type:` prefix, so both
    shapes read alike (`ticket.status_changed`, `ticket.updated`, `user.deleted`)."""

    event_id: str | None
    event_type: str
    ticket_id: int | None
    occurred_at: datetime | None
    ticket: dict[str, Any]
    complete: bool
    raw: dict[str, Any]
    source: str = SOURCE_EVENT
    account_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def is_deletion(self) -> bool:
        return self.event_type in DELETION_EVENT_TYPES


def parse_webhook_payload(body: bytes) -> WebhookEvent:
    """Parse a verified webhook body. Raises `WebhookPayloadError` (a `ValueError`) for a
    body that is not UTF-8 JSON, or JSON of neither supported shape."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        # ValueError covers JSONDecodeError and integers past Python's digit limit.
        raise WebhookPayloadError(f"body is not UTF-8 JSON: {exc}") from exc
    except RecursionError:
        # json's C scanner recurses per nesting level; a hostile body must get a 400.
        raise WebhookPayloadError("body is JSON nested too deeply") from None
    try:
        return parse_webhook_data(data)
    except WebhookPayloadError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
        # A field of the wrong type deep in an otherwise known shape: still the sender's
        # mistake (400), never a crash (500).
        raise WebhookPayloadError(f"payload field of an unexpected type: {exc!r}") from None


def parse_webhook_data(data: Any) -> WebhookEvent:
    """`parse_webhook_payload` for an already decoded JSON value."""
    if not isinstance(data, dict):
        raise WebhookPayloadError(
            f"expected a JSON object, got {type(data).__name__}: not a Zendesk webhook payload"
        )
    event_type = data.get("type")
    if isinstance(event_type, str) and event_type.startswith(EVENT_TYPE_PREFIX):
        return _parse_event_envelope(data)
    if TEMPLATE_MARKER in data:
        return _parse_trigger_template(data)
    raise WebhookPayloadError(
        "unrecognised payload: expected an event-subscribed webhook "
        f'("type": "{EVENT_TYPE_PREFIX}...") or the ml-connector trigger template '
        f'("{TEMPLATE_MARKER}": {TEMPLATE_VERSION}, "event", "ticket"); see docs/webhooks.md'
    )


def normalize_ticket(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Zendesk ticket fields from a webhook, in REST API shape: ids as ints (an empty or
    zero id means "none"), enums in lower case, timestamps as `YYYY-MM-DDTHH:MM:SSZ`, tags
    as a list. Values that cannot be read are left out (so `complete` turns False instead
    of staging a guess); unknown fields pass through."""
    ticket: dict[str, Any] = {}
    for key, value in fields.items():
        key = _DETAIL_RENAMES.get(key, key)
        convert = _CONVERTERS.get(key)
        if convert is None:
            if key in _NULLABLE_TEXT_FIELDS and value == "":
                value = None
            ticket[key] = value
        elif value is None or value == "":
            ticket[key] = None
        else:
            # try/except rather than contextlib.suppress: this runs for every field of
            # every delivery, and suppress() builds an object per call.
            try:  # noqa: SIM105
                ticket[key] = convert(value)
            except _Unreadable:
                pass
    return ticket


def is_complete(ticket: Mapping[str, Any]) -> bool:
    return all(ticket.get(k) is not None for k in REQUIRED_FOR_COMPLETE) and all(
        k in ticket for k in REQUIRED_KEYS_FOR_COMPLETE
    )


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO-8601 timestamp as Zendesk writes it (seconds optional, as in
    `{{ticket.updated_at_with_timestamp}}`: `2013-12-12T05:35Z`), as an aware UTC
    datetime; None when it cannot be read."""
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP_RE.match(value.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    text = f"{year}-{month}-{day}T{hour}:{minute}:{second or '00'}"
    if fraction:
        text += "." + fraction[:6]
    if zone and zone != "Z":
        text += zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """The REST API's timestamp format (`2023-09-18T23:37:07Z`)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------- shapes
def _parse_event_envelope(data: dict[str, Any]) -> WebhookEvent:
    event_type = str(data["type"])[len(EVENT_TYPE_PREFIX) :]
    if not event_type:
        raise WebhookPayloadError('"type" names no event')
    detail = data.get("detail")
    if detail is None:
        detail = {}
    if not isinstance(detail, dict):
        raise WebhookPayloadError('"detail" must be a JSON object')
    details = data.get("event")
    ticket: dict[str, Any] = {}
    ticket_id: int | None = None
    if event_type.startswith("ticket."):
        ticket = normalize_ticket(detail)
        ticket_id = ticket.get("id") or _subject_ticket_id(data.get("subject"))
        if ticket_id is not None:
            ticket["id"] = ticket_id
        if event_type in DELETION_EVENT_TYPES:
            ticket["status"] = "deleted"
    return WebhookEvent(
        event_id=_text_or_none(data.get("id")),
        event_type=event_type,
        ticket_id=ticket_id,
        occurred_at=parse_timestamp(data.get("time")),
        ticket=ticket,
        complete=ticket_id is not None and is_complete(ticket),
        raw=data,
        source=SOURCE_EVENT,
        account_id=_id_or_none(data.get("account_id")),
        details=details if isinstance(details, dict) else {},
    )


def _parse_trigger_template(data: dict[str, Any]) -> WebhookEvent:
    version = data.get(TEMPLATE_MARKER)
    if _id_or_none(version) != TEMPLATE_VERSION:
        raise WebhookPayloadError(
            f'unsupported "{TEMPLATE_MARKER}" template version {version!r} '
            f"(this receiver reads version {TEMPLATE_VERSION})"
        )
    fields = data.get("ticket")
    if not isinstance(fields, dict):
        raise WebhookPayloadError('trigger template payload needs a "ticket" object')
    ticket = normalize_ticket(fields)
    ticket_id = ticket.get("id")
    if ticket_id is None:
        raise WebhookPayloadError('trigger template payload needs "ticket.id"')
    event_type = data.get("event") or "ticket.updated"
    if not isinstance(event_type, str):
        raise WebhookPayloadError('"event" must be a string')
    if event_type in DELETION_EVENT_TYPES:
        ticket["status"] = "deleted"
    return WebhookEvent(
        event_id=_text_or_none(data.get("event_id")),
        event_type=event_type,
        ticket_id=ticket_id,
        occurred_at=parse_timestamp(fields.get("updated_at")),
        ticket=ticket,
        complete=is_complete(ticket),
        raw=data,
        source=SOURCE_TRIGGER,
        account_id=_id_or_none(data.get("account_id")),
    )


# ---------------------------------------------------------------------------- values
class _Unreadable(Exception):
    pass


def _to_id(value: Any) -> int | None:
    """A Zendesk id: a positive 64-bit integer, given as a number or a decimal string."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if text == "" or text.lower() in ("null", "none"):
            return None
        if not (text.isascii() and text.isdigit()):
            raise _Unreadable
        value = int(text)
    if isinstance(value, int) and 0 <= value <= _MAX_ID:
        return value or None
    raise _Unreadable


def _id_or_none(value: Any) -> int | None:
    try:
        return _to_id(value)
    except _Unreadable:
        return None


def _enum(value: Any, known: Mapping[str, str]) -> str:
    if isinstance(value, str):
        found = known.get(value.strip().lower())
        if found is not None:
            return found
    raise _Unreadable


def _ticket_type(value: Any) -> str | None:
    if isinstance(value, str) and value.strip().lower() in _NO_TYPE:
        return None
    return _enum(value, _TYPES)


def _timestamp(value: Any) -> str:
    if isinstance(value, str) and len(value) == 20 and value[10::3] == "T::Z":
        # Already in REST format (the usual case): only check that it is a real time.
        try:
            datetime.fromisoformat(value[:19])
            return value
        except ValueError:
            raise _Unreadable from None
    parsed = parse_timestamp(value)
    if parsed is None:
        raise _Unreadable
    return format_timestamp(parsed)


def _tags(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return list(value)
    raise _Unreadable


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _Unreadable


def _status(value: Any) -> str:
    return _enum(value, _STATUSES)


def _priority(value: Any) -> str:
    return _enum(value, _PRIORITIES)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    **dict.fromkeys(_ID_FIELDS, _to_id),
    **dict.fromkeys(_TIMESTAMP_FIELDS, _timestamp),
    "status": _status,
    "priority": _priority,
    "type": _ticket_type,
    "tags": _tags,
    "is_public": _boolean,
}


def _subject_ticket_id(subject: Any) -> int | None:
    if isinstance(subject, str) and subject.startswith(TICKET_SUBJECT_PREFIX):
        return _id_or_none(subject[len(TICKET_SUBJECT_PREFIX) :])
    return None


def _text_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None
