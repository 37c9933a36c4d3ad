"""Organization fields: list (offset paging, fixture organization_fields_list_offset_page
.json), show, and create (fixture organization_field_create_201.json)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from connector_pipeline import settings
from connector_pipeline.sandbox.zendesk_routes.common import int_id, offset_page, read_body
from connector_pipeline.sandbox.zendesk_service import ZendeskSandbox
from connector_pipeline.sandbox.zendesk_state import iso

API = settings.ZENDESK_API_PREFIX


def router(sandbox: ZendeskSandbox) -> APIRouter:
    fields = sandbox.state.organization_fields
    router = APIRouter(prefix=API)

    @router.get("/organization_fields")
    def list_fields(request: Request) -> dict[str, Any]:
        return offset_page(fields.listed(), request, "organization_fields", "organization_fields")

    @router.post("/organization_fields", status_code=201)
    async def create_field(request: Request) -> JSONResponse:
        body = await read_body(request)
        field = fields.create(body.get("organization_field") or {}, iso)
        location = f"{request.base_url}api/v2/organization_fields/{field['id']}.json"
        return JSONResponse(
            {"organization_field": field}, status_code=201, headers={"Location": location}
        )

    @router.get("/organization_fields/{field_id}")
    def show_field(field_id: str) -> dict[str, Any]:
        return {"organization_field": fields.get(int_id(field_id))}

    return router
