"""The scenario API under `/_sandbox/` (not part of Zendesk): stats, read-back, seed data,
ticket changes that fire webhooks, webhook target and redelivery, config and reset."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from connector_pipeline.sandbox.zendesk_routes.common import read_body
from connector_pipeline.sandbox.zendesk_seed import SeedRequest, seed
from connector_pipeline.sandbox.zendesk_service import ZendeskSandbox


class WebhookTarget(BaseModel):
    url: str | None = None
    secret: str | None = None


class Redeliver(BaseModel):
    count: int = 1
    new_invocation: bool = False


def router(sandbox: ZendeskSandbox) -> APIRouter:
    state = sandbox.state
    router = APIRouter(prefix="/_sandbox")

    @router.get("/stats")
    def stats() -> dict[str, Any]:
        data = state.stats()
        data["webhook_deliveries"] = len(sandbox.webhooks.deliveries())
        data["webhook_pending"] = sandbox.webhooks.pending()
        data["faults"] = sandbox.faults.snapshot()
        return data

    @router.get("/organizations")
    def organizations() -> list[dict[str, Any]]:
        return state.organization_list()

    @router.get("/tickets")
    def tickets() -> list[dict[str, Any]]:
        return state.all_tickets()

    @router.get("/groups")
    def groups() -> list[dict[str, Any]]:
        with state.lock:
            return [dict(g) for _, g in sorted(state.people.groups.items())]

    @router.get("/users/{user_id}")
    def user(user_id: int) -> dict[str, Any]:
        return state.people.user(user_id)

    @router.patch("/users/{user_id}")
    async def update_user(user_id: int, request: Request) -> dict[str, Any]:
        return state.people.set_user(user_id, await read_body(request))

    @router.post("/seed")
    def seed_data(body: SeedRequest) -> dict[str, Any]:
        return seed(state, body)

    @router.post("/tickets", status_code=201)
    async def create_ticket(request: Request) -> JSONResponse:
        return JSONResponse(state.create_ticket(await read_body(request), scenario=True), 201)

    @router.patch("/tickets/{ticket_id}")
    async def update_ticket(ticket_id: int, request: Request) -> dict[str, Any]:
        return state.update_ticket(ticket_id, await read_body(request), scenario=True)

    @router.post("/tickets/{ticket_id}/solve")
    def solve_ticket(ticket_id: int) -> dict[str, Any]:
        return state.update_ticket(ticket_id, {"status": "solved"}, scenario=True)

    @router.delete("/tickets/{ticket_id}")
    def delete_ticket(ticket_id: int) -> dict[str, Any]:
        return state.delete_ticket(ticket_id)

    @router.post("/webhook")
    def configure_webhook(body: WebhookTarget) -> dict[str, Any]:
        sandbox.webhooks.configure(body.url, body.secret)
        return {"url": sandbox.config.webhook_url, "webhook_id": sandbox.config.webhook_id}

    @router.post("/webhook/redeliver")
    def redeliver(body: Redeliver) -> dict[str, Any]:
        ids = sandbox.webhooks.redeliver(body.count, new_invocation=body.new_invocation)
        return {"invocation_ids": ids}

    @router.get("/webhook/deliveries")
    def deliveries() -> list[dict[str, Any]]:
        return sandbox.webhooks.deliveries()

    @router.post("/config")
    async def configure(request: Request) -> dict[str, Any]:
        state.reconfigure(await read_body(request))
        return {k: v for k, v in vars(sandbox.config).items() if "secret" not in k}

    @router.post("/reset")
    def reset() -> dict[str, Any]:
        sandbox.reset()
        return {"reset": True}

    return router
