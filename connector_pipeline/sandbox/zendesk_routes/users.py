"""Users: `users/me`, the account behind the credentials (fixture users_me_admin.json).

The role follows the credentials: the sandbox admin's token is an admin unless the
scenario sets `user_role` (e.g. "agent", so `ml-connector check` can be tested against a
non-admin; incremental exports then answer 403 as Zendesk's do for non-admins)."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Request

from connector_pipeline import settings
from connector_pipeline.sandbox.zendesk_service import ZendeskSandbox
from connector_pipeline.sandbox.zendesk_state import FIRST_USER_ID, iso

API = settings.ZENDESK_API_PREFIX
# Zendesk's role_type: 4 for an admin; null for a plain agent or an end user.
_ROLE_TYPES: dict[str, int | None] = {"admin": 4, "agent": None, "end-user": None}
_CREATED = 1_694_303_518.0  # fixed, so answers are deterministic


def user_record(sandbox: ZendeskSandbox, role: str) -> dict[str, Any]:
    config = sandbox.config
    admin = role == "admin"
    user_id = FIRST_USER_ID if admin else FIRST_USER_ID + 9
    email = config.email if admin else config.agent_email
    return {
        "id": user_id,
        "url": sandbox.state.url(f"users/{user_id}"),
        "name": "Sandbox Admin" if admin else "Sandbox Agent",
        "email": email,
        "created_at": iso(_CREATED),
        "updated_at": iso(_CREATED),
        "time_zone": "America/New_York",
        "iana_time_zone": "America/New_York",
        "phone": None,
        "shared_phone_number": None,
        "photo": None,
        "locale_id": 1,
        "locale": "en-US",
        "organization_id": None,
        "role": role,
        "verified": True,
        # Recorded on users/me; a per-user value the sandbox derives from the id.
        "authenticity_token": hashlib.sha256(str(user_id).encode()).hexdigest(),
        "external_id": None,
        "tags": [],
        "alias": None,
        "active": True,
        "shared": False,
        "shared_agent": False,
        "last_login_at": iso(_CREATED),
        "two_factor_auth_enabled": None,
        "signature": None,
        "details": None,
        "notes": None,
        "role_type": _ROLE_TYPES.get(role),
        "custom_role_id": None,
        "moderator": admin,
        "ticket_restriction": None if admin else "groups",
        "only_private_comments": False,
        "restricted_agent": not admin,
        "suspended": False,
        "default_group_id": None,
        "report_csv": admin,
        "user_fields": {},
    }


def router(sandbox: ZendeskSandbox) -> APIRouter:
    router = APIRouter(prefix=API)

    @router.get("/users/me")
    def me(request: Request) -> dict[str, Any]:
        role = request.scope.get("state", {}).get("zendesk_role", "admin")
        return {"user": user_record(sandbox, str(role))}

    return router
