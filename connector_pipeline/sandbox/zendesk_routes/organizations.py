"""Organizations: list, show, show_many, search, count, the incremental export, create,
create_or_update, update, delete, and the bulk create_many / update_many / destroy_many."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from connector_pipeline import settings
from connector_pipeline.sandbox.zendesk_errors import SandboxInvalid, not_found, too_many_values
from connector_pipeline.sandbox.zendesk_routes.common import (
    api_base,
    csv_values,
    cursor_page,
    int_id,
    read_body,
)
from connector_pipeline.sandbox.zendesk_service import ZendeskSandbox

API = settings.ZENDESK_API_PREFIX


def router(sandbox: ZendeskSandbox) -> APIRouter:
    state = sandbox.state
    router = APIRouter(prefix=API)

    @router.get("/organizations")
    def list_organizations(request: Request) -> dict[str, Any]:
        return cursor_page(state.organization_list(), request, "organizations", "organizations")

    @router.post("/organizations", status_code=201)
    async def create_organization(request: Request) -> JSONResponse:
        body = await read_body(request)
        org = state.create_organization(body.get("organization") or {})
        location = f"{request.base_url}api/v2/organizations/{org['id']}.json"
        return JSONResponse({"organization": org}, status_code=201, headers={"Location": location})

    @router.get("/organizations/show_many")
    def show_many_organizations(ids: str | None = None, external_ids: str | None = None) -> dict:
        id_list, ext_list = csv_values(ids), csv_values(external_ids)
        if len(id_list) > settings.ZENDESK_MAX_BATCH or len(ext_list) > settings.ZENDESK_MAX_BATCH:
            raise too_many_values()
        try:
            found = state.organizations_by(ids=[int(i) for i in id_list], external_ids=ext_list)
        except ValueError as exc:
            raise not_found() from exc
        # Offset-style envelope, as recorded (organizations_show_many_one_id.json).
        return {
            "organizations": found,
            "next_page": None,
            "previous_page": None,
            "count": len(found),
        }

    @router.get("/organizations/search")
    def search_organizations(external_id: str | None = None, name: str | None = None) -> dict:
        if (external_id is None) == (name is None):
            raise SandboxInvalid(
                400,
                {
                    "error": "InvalidParameter",
                    "description": "Provide exactly one of external_id or name",
                },
            )
        found = state.search_organizations(external_id=external_id, name=name)
        return {
            "organizations": found,
            "next_page": None,
            "previous_page": None,
            "count": len(found),
        }

    @router.get("/organizations/count")
    def count_organizations() -> dict[str, Any]:
        return {"count": state.organization_count()}

    @router.get("/incremental/organizations")
    def export_organizations(request: Request, start_time: int, per_page: int = 1000) -> dict:
        per_page = min(max(per_page, 1), settings.ZENDESK_EXPORT_PER_PAGE)
        return state.export_organizations(
            start_time=start_time, per_page=per_page, base=api_base(request)
        )

    @router.post("/organizations/create_or_update")
    async def create_or_update(request: Request) -> JSONResponse:
        body = await read_body(request)
        org, created = state.create_or_update_organization(body.get("organization") or {})
        return JSONResponse({"organization": org}, status_code=201 if created else 200)

    @router.post("/organizations/create_many")
    async def create_many(request: Request) -> dict[str, Any]:
        body = await read_body(request)
        return {"job_status": state.create_many(list(body.get("organizations") or []))}

    @router.put("/organizations/update_many")
    async def update_many(
        request: Request, ids: str | None = None, external_ids: str | None = None
    ) -> dict[str, Any]:
        body = await read_body(request)
        if ids is not None or external_ids is not None:
            changes = dict(body.get("organization") or {})
            job = state.update_many_same(csv_values(ids), csv_values(external_ids), changes)
        else:
            job = state.update_many(list(body.get("organizations") or []))
        return {"job_status": job}

    @router.delete("/organizations/destroy_many")
    def destroy_many(ids: str | None = None, external_ids: str | None = None) -> dict[str, Any]:
        return {"job_status": state.destroy_many(csv_values(ids), csv_values(external_ids))}

    @router.get("/organizations/{org_id}")
    def show_organization(org_id: str) -> dict[str, Any]:
        found = state.organizations_by(ids=[int_id(org_id)])
        if not found:
            raise not_found()
        return {"organization": found[0]}

    @router.put("/organizations/{org_id}")
    async def update_organization(org_id: str, request: Request) -> dict[str, Any]:
        body = await read_body(request)
        org = state.update_organization(int_id(org_id), body.get("organization") or {})
        return {"organization": org}

    @router.delete("/organizations/{org_id}", status_code=204)
    def delete_organization(org_id: str) -> Response:
        state.delete_organization(int_id(org_id))
        return Response(status_code=204)

    return router
