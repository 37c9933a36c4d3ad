"""The sandbox account's people and groups, and the `include=users,groups` sideloads the
ticket endpoints answer with (reference/zendesk-api.md 4.5: sideloaded records come as
top-level arrays next to `tickets`).

Every user id a ticket names is a user of the account: a requester the sandbox has not
met yet is made on first sight, with a name and e-mail derived from the id, so seeded and
API-created tickets alike have a requester to sideload. Groups are a fixed few, as a small
support team has.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

FIRST_GROUP_ID = 6_130_840_000_001
GROUP_NAMES = ("Accounts Payable Support", "Billing", "Vendor Onboarding")
_FIRST_NAMES = (
    "Ana", "Ben", "Chloé", "Dev", "Elif", "Femi", "Grace", "Hiro", "Ines", "Jon",
    "Kemal", "Lena", "Mateo", "Nora", "Omar", "Priya",
)  # fmt: skip
_LAST_NAMES = (
    "Alvarez", "Brooks", "Chen", "Dubois", "Eriksen", "Fischer", "García", "Haddad",
    "Ivanova", "Jensen", "Kowalski", "Li", "Moreau", "Nakamura", "Okafor", "Patel",
)  # fmt: skip
_USER_ID_FIELDS = ("requester_id", "submitter_id", "assignee_id")
_CREATED = "2023-09-10T00:00:00Z"  # fixed, so answers are deterministic


def requester_name(user_id: int) -> str:
    """The name the sandbox gives a user it makes on first sight (stable per id)."""
    return f"{_FIRST_NAMES[user_id % 16]} {_LAST_NAMES[(user_id // 16) % 16]}"


def requester_email(user_id: int) -> str:
    return f"requester.{user_id}@example.com"


class People:
    """Users and groups, guarded by the sandbox state's lock."""

    def __init__(self, lock: threading.RLock, url: Callable[[str], str]) -> None:
        self.lock = lock
        self.url = url
        self.users: dict[int, dict[str, Any]] = {}
        self.groups: dict[int, dict[str, Any]] = {
            FIRST_GROUP_ID + i: self._group(FIRST_GROUP_ID + i, name)
            for i, name in enumerate(GROUP_NAMES)
        }

    def _group(self, group_id: int, name: str) -> dict[str, Any]:
        return {
            "url": self.url(f"groups/{group_id}"),
            "id": group_id,
            "is_public": True,
            "name": name,
            "description": "",
            "default": group_id == FIRST_GROUP_ID,
            "deleted": False,
            "created_at": _CREATED,
            "updated_at": _CREATED,
        }

    def user(self, user_id: int) -> dict[str, Any]:
        with self.lock:
            if user_id not in self.users:
                self.users[user_id] = {
                    "id": user_id,
                    "url": self.url(f"users/{user_id}"),
                    "name": requester_name(user_id),
                    "email": requester_email(user_id),
                    "role": "end-user",
                    "organization_id": None,
                    "active": True,
                    "created_at": _CREATED,
                    "updated_at": _CREATED,
                }
            return dict(self.users[user_id])

    def set_user(self, user_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Change a user's name or e-mail (scenario: a requester renamed in Zendesk)."""
        with self.lock:
            self.user(user_id)
            for key in ("name", "email"):
                if key in fields:
                    self.users[user_id][key] = str(fields[key])
            return dict(self.users[user_id])

    def sideloads(self, tickets: Iterable[Mapping[str, Any]], include: str | None) -> dict:
        """The top-level `users` / `groups` arrays `include` asks for: every user and group
        the tickets name, each once. Other sideload names are ignored."""
        wanted = {part.strip() for part in (include or "").split(",") if part.strip()}
        tickets = list(tickets)
        answer: dict[str, list[dict[str, Any]]] = {}
        with self.lock:
            if "users" in wanted:
                ids = {int(t[f]) for t in tickets for f in _USER_ID_FIELDS if t.get(f) is not None}
                answer["users"] = [self.user(i) for i in sorted(ids)]
            if "groups" in wanted:
                ids = {int(t["group_id"]) for t in tickets if t.get("group_id") is not None}
                answer["groups"] = [dict(self.groups[i]) for i in sorted(ids) if i in self.groups]
        return answer
