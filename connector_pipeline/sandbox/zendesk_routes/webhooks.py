"""Webhooks: the list, the signing secret, invocations and their attempts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from connector_pipeline import settings
from connector_pipeline.sandbox.zendesk_errors import not_found
from connector_pipeline.sandbox.zendesk_routes.common import (
    pairs,
)
from connector_pipeline.sandbox.zendesk_service import ZendeskSandbox
from connector_pipeline.sandbox.zendesk_state import FIRST_USER_ID, iso
from connector_pipeline.sandbox.zendesk_webhooks import EVENT_PREFIX, SUBSCRIBED_EVENTS

API = settings.ZENDESK_API_PREFIX
_CREATED = 1_694_303_518.0  # fixed, so answers are deterministic


def router(sandbox: ZendeskSandbox) -> APIRouter:
    router = APIRouter(prefix=API)

    @router.get("/webhooks")
    def list_webhooks() -> dict[str, Any]:
        """The one webhook the sandbox sends through, once a target URL is configured
        (Zendesk's list shape: `webhooks`, cursor `meta` and `links`)."""
        config = sandbox.config
        hooks = []
        if config.webhook_url:
            hooks.append(
                {
                    "id": config.webhook_id,
                    "name": "ml-connector sandbox",
                    "status": "active",
                    "subscriptions": [EVENT_PREFIX + kind for kind in SUBSCRIBED_EVENTS],
                    "endpoint": config.webhook_url,
                    "http_method": "POST",
                    "request_format": "json",
                    "created_at": iso(_CREATED),
                    "created_by": str(FIRST_USER_ID),
                    "updated_at": iso(_CREATED),
                    "updated_by": str(FIRST_USER_ID),
                }
            )
        return {
            "webhooks": hooks,
            "meta": {"has_more": False, "after_cursor": None, "before_cursor": None},
            "links": {"prev": None, "next": None},
        }

    @router.get("/webhooks/{webhook_id}/signing_secret")
    def signing_secret(webhook_id: str) -> dict[str, Any]:
        if webhook_id != sandbox.config.webhook_id:
            raise not_found()
        return {"signing_secret": {"secret": sandbox.config.webhook_secret, "algorithm": "SHA256"}}

    @router.get("/webhooks/{webhook_id}/invocations")
    def invocations(webhook_id: str) -> dict[str, Any]:
        if webhook_id != sandbox.config.webhook_id:
            raise not_found()
        items = [
            {
                "id": inv["id"],
                "status": inv["status"],
                "status_code": inv["log"][-1]["status_code"] if inv["log"] else None,
                "latest_completed_at": inv["log"][-1]["completed_at"] if inv["log"] else None,
            }
            for inv in sandbox.webhooks.invocations()
        ]
        return {"invocations": items, "meta": {"has_more": False, "after_cursor": None}}

    @router.get("/webhooks/{webhook_id}/invocations/{invocation_id}/attempts")
    def attempts(webhook_id: str, invocation_id: str) -> dict[str, Any]:
        invocation = sandbox.webhooks.invocation(invocation_id)
        if webhook_id != sandbox.config.webhook_id or invocation is None:
            raise not_found()
        out = []
        for entry in reversed(invocation.log):
            status = "success" if entry["ok"] else "failed"
            if not entry["ok"] and entry["attempt"] >= sandbox.config.webhook_max_attempts:
                status = "terminated"
            out.append(
                {
                    "id": webhook_id,
                    "invocation_id": invocation_id,
                    "status_code": entry["status_code"],
                    "status": status,
                    "request": {
                        "headers": pairs(entry["request_headers"]),
                        "payload": entry["payload"],
                    },
                    "response": {
                        "headers": pairs(entry["response_headers"]),
                        "payload": entry["response_body"],
                    },
                    "completed_at": entry["completed_at"],
                }
            )
        return {"attempts": out}

    return router
