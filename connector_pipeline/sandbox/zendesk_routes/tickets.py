"""Tickets (list, show, show_many, create, update) and the incremental ticket exports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from connector_pipeline import settings
from connector_pipeline.sandbox.zendesk_audits import audit
from connector_pipeline.sandbox.zendesk_errors import SandboxInvalid, not_found, too_many_values
from connector_pipeline.sandbox.zendesk_routes.common import (
    api_base,
    csv_values,
    cursor_page,
    int_id,
    public_ticket,
    read_body,
    ticket_answer,
)
from connector_pipeline.sandbox.zendesk_service import ZendeskSandbox
from connector_pipeline.sandbox.zendesk_state import Change

API = settings.ZENDESK_API_PREFIX


def router(sandbox: ZendeskSandbox) -> APIRouter:
    state = sandbox.state
    router = APIRouter(prefix=API)

    @router.get("/tickets")
    def list_tickets(request: Request) -> dict[str, Any]:
        tickets = [public_ticket(t) for t in state.visible_tickets()]
        return cursor_page(tickets, request, "tickets", "tickets")

    def audited(
        request: Request,
        ticket: dict[str, Any],
        fields: Mapping[str, Any],
        changes: list[Change] | None,
    ) -> dict[str, Any]:
        comment = fields.get("comment")
        if changes is None and comment is None:
            # A create without a comment still records its description as the first one.
            comment = {"body": ticket["description"], "public": True}
        return {
            "ticket": ticket_answer(ticket),
            "audit": audit(
                ticket,
                new_id=state.next_event_id,
                now=state.clock(),
                user_agent=request.headers.get("user-agent", ""),
                comment=comment if isinstance(comment, Mapping) else None,
                changes=changes,
            ),
        }

    @router.post("/tickets", status_code=201)
    async def create_ticket(request: Request) -> JSONResponse:
        fields = (await read_body(request)).get("ticket") or {}
        ticket = state.create_ticket(fields, scenario=False)
        location = f"{request.base_url}api/v2/tickets/{ticket['id']}.json"
        return JSONResponse(
            audited(request, ticket, fields, None), status_code=201, headers={"Location": location}
        )

    @router.get("/tickets/show_many")
    def show_many_tickets(ids: str | None = None, include: str | None = None) -> dict[str, Any]:
        wanted = csv_values(ids)
        if len(wanted) > settings.ZENDESK_MAX_BATCH:
            raise too_many_values()
        with state.lock:
            found = [
                public_ticket(state.tickets[int(i)])
                for i in wanted
                if i.isdigit()
                and int(i) in state.tickets
                and state.tickets[int(i)]["status"] != "deleted"
            ]
        return {"tickets": found, **state.people.sideloads(found, include)}

    @router.get("/tickets/{ticket_id}")
    def show_ticket(ticket_id: str) -> dict[str, Any]:
        with state.lock:
            ticket = state.tickets.get(int_id(ticket_id))
            if ticket is None or ticket["status"] == "deleted":
                raise not_found()
            return {"ticket": public_ticket(ticket)}

    @router.put("/tickets/{ticket_id}")
    async def update_ticket(ticket_id: str, request: Request) -> dict[str, Any]:
        fields = (await read_body(request)).get("ticket") or {}
        ticket, changes = state.update_ticket_changes(int_id(ticket_id), fields, scenario=False)
        return audited(request, ticket, fields, changes)

    @router.get("/incremental/tickets/cursor")
    def export_cursor(
        request: Request,
        start_time: int | None = None,
        cursor: str | None = None,
        per_page: int = 1000,
        include: str | None = None,
    ) -> dict[str, Any]:
        if start_time is None and cursor is None:
            raise SandboxInvalid(
                400, {"error": "InvalidValue", "description": "start_time or cursor is required"}
            )
        per_page = min(max(per_page, 1), settings.ZENDESK_EXPORT_PER_PAGE)
        return state.export_cursor(
            start_time=start_time,
            cursor=cursor,
            per_page=per_page,
            base=api_base(request),
            include=include,
        )

    @router.get("/incremental/tickets")
    def export_time_based(
        request: Request, start_time: int, per_page: int = 1000, include: str | None = None
    ) -> dict:
        per_page = min(max(per_page, 1), settings.ZENDESK_EXPORT_PER_PAGE)
        return state.export_time_based(
            start_time=start_time, per_page=per_page, base=api_base(request), include=include
        )

    return router
