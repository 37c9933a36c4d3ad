"""Ticket audits: what Zendesk answers next to the ticket on create and update.

Shape after ticket_create_201_with_audit.json (../shared/fixtures/zendesk): an audit with
`events`: the Comment first (body, html_body, plain_body, public), then one Create event
per field on create (values as strings, null when unset), or one Change event per changed
field with `previous_value` on update. `metadata.system` describes the calling client.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from connector_pipeline.sandbox.zendesk_state import Change, iso

# The fields whose Create events the recorded answer lists, in its order.
CREATE_FIELDS = (
    "subject",
    "requester_id",
    "priority",
    "type",
    "status",
    "organization_id",
    "brand_id",
    "ticket_form_id",
    "custom_status_id",
)
_HTML_BODY = '<div class="zd-comment" dir="auto"><p dir="auto">{}</p></div>'
_VIA = {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _comment(event_id: int, audit_id: int, author: Any, body: str, public: bool) -> dict:
    return {
        "id": event_id,
        "type": "Comment",
        "author_id": author,
        "body": body,
        "html_body": _HTML_BODY.format(html.escape(body)),
        "plain_body": body,
        "public": public,
        "attachments": [],
        "audit_id": audit_id,
    }


def audit(
    ticket: Mapping[str, Any],
    *,
    new_id: Callable[[], int],
    now: float,
    user_agent: str,
    comment: Mapping[str, Any] | None,
    changes: Sequence[Change] | None = None,
) -> dict[str, Any]:
    """The audit of a create (changes None) or of an update (the changes it made)."""
    audit_id = new_id()
    author = ticket.get("requester_id")
    events: list[dict[str, Any]] = []
    if comment is not None:
        body = str(comment.get("body") or comment.get("html_body") or "")
        public = bool(comment.get("public", True))
        events.append(_comment(new_id(), audit_id, author, body, public))
    if changes is None:
        events += [
            {"id": new_id(), "type": "Create", "value": _text(ticket.get(name)), "field_name": name}
            for name in CREATE_FIELDS
        ]
    else:
        events += [
            {
                "id": new_id(),
                "type": "Change",
                "value": _text(current),
                "field_name": name,
                "previous_value": _text(previous),
            }
            for name, previous, current in changes
        ]
    return {
        "id": audit_id,
        "ticket_id": ticket["id"],
        "created_at": iso(now),
        "author_id": author,
        "metadata": {
            # The sandbox has no geolocation: loopback and fixed coordinates, in the
            # recorded shape.
            "system": {
                "client": user_agent,
                "ip_address": "127.0.0.1",
                "location": "Loopback",
                "latitude": 0.0,
                "longitude": 0.0,
            },
            "custom": {},
        },
        "events": events,
        "via": _VIA,
    }
