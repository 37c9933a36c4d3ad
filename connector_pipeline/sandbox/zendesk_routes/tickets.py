"""Tickets (list, show, show_many, create, update) and the incremental ticket exports."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from connector_pipeline import settings
from connector_pipeline.sandbox.zendesk_errors import SandboxInvalid, not_found, too_many_values
from connector_pipeline.sandbox.zendesk_routes.common import (
    csv_values,
    cursor_page,
    int_id,
    public_ticket,
    read_body,
)
from connector_pipeline.sandbox.zendesk_service import ZendeskSandbox

API = settings.ZENDESK_API_PREFIX


def router(sandbox: ZendeskSandbox) -> APIRouter:
    state = sandbox.state
    router = APIRouter(prefix=API)

    @router.get("/tickets")
    def list_tickets(request: Request) -> dict[str, Any]:
        tickets = [public_ticket(t) for t in state.visible_tickets()]
        return cursor_page(tickets, request, "tickets", "tickets")

    @router.post("/tickets", status_code=201)
    async def create_ticket(request: Request) -> JSONResponse:
        body = await read_body(request)
        ticket = state.create_ticket(body.get("ticket") or {}, scenario=False)
        return JSONResponse({"ticket": public_ticket(ticket)}, status_code=201)

    @router.get("/tickets/show_many")
    def show_many_tickets(ids: str | None = None) -> dict[str, Any]:
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
        return {"tickets": found}

    @router.get("/tickets/{ticket_id}")
    def show_ticket(ticket_id: str) -> dict[str, Any]:
        with state.lock:
            ticket = state.tickets.get(int_id(ticket_id))
            if ticket is None or ticket["status"] == "deleted":
                raise not_found()
            return {"ticket": public_ticket(ticket)}

    @router.put("/tickets/{ticket_id}")
    async def update_ticket(ticket_id: str, request: Request) -> dict[str, Any]:
        body = await read_body(request)
        ticket = state.update_ticket(int_id(ticket_id), body.get("ticket") or {}, scenario=False)
        return {"ticket": public_ticket(ticket)}

    @router.get("/incremental/tickets/cursor")
    def export_cursor(
        start_time: int | None = None, cursor: str | None = None, per_page: int = 1000
    ) -> dict[str, Any]:
        if start_time is None and cursor is None:
            raise SandboxInvalid(
                400, {"error": "InvalidValue", "description": "start_time or cursor is required"}
            )
        per_page = min(max(per_page, 1), settings.ZENDESK_EXPORT_PER_PAGE)
        return state.export_cursor(start_time=start_time, cursor=cursor, per_page=per_page)

    @router.get("/incremental/tickets")
    def export_time_based(start_time: int, per_page: int = 1000) -> dict[str, Any]:
        per_page = min(max(per_page, 1), settings.ZENDESK_EXPORT_PER_PAGE)
        return state.export_time_based(start_time=start_time, per_page=per_page)

    return router
