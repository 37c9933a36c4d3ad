"""Ticket sideloads: the requester's and group's names, which the ticket object names by
id only, fetched in the same call as the tickets (`include=users,groups`).

Zendesk documents sideloads for the ticket endpoints, including the incremental export:
side-loaded records come as top-level arrays next to `tickets` (reference/zendesk-api.md
4.5, DOC S14). The full list of sideloads the export allows is UNCONFIRMED there; `users`
and `groups` are the two named in the reference. A sideload costs no extra request.

Only what a ticket record shows is attached (`requester`: name and email; `group`: name),
not the whole user: a user's own `updated_at` or login time would otherwise change the
ticket's content hash without the ticket changing for Intacct.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector_pipeline.domain import GROUP_KEY, REQUESTER_KEY

TICKET_SIDELOADS = "users,groups"


def _by_id(records: Any) -> dict[int, Mapping[str, Any]]:
    found: dict[int, Mapping[str, Any]] = {}
    for record in records or []:
        if isinstance(record, Mapping) and isinstance(record.get("id"), int):
            found[record["id"]] = record
    return found


def attach_sideloads(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The body's `tickets`, each with `requester` ({name, email}) and `group` ({name})
    from the sideloaded `users` and `groups`. A ticket whose requester or group is not in
    the sideload (or has none) gets no such key, so nothing is invented."""
    users = _by_id(body.get("users"))
    groups = _by_id(body.get("groups"))
    tickets = []
    for ticket in body.get("tickets") or []:
        ticket = dict(ticket)
        user = users.get(ticket.get("requester_id"))  # type: ignore[arg-type]
        if user is not None:
            ticket[REQUESTER_KEY] = {"name": user.get("name"), "email": user.get("email")}
        group = groups.get(ticket.get("group_id"))  # type: ignore[arg-type]
        if group is not None:
            ticket[GROUP_KEY] = {"name": group.get("name")}
        tickets.append(ticket)
    return tickets
