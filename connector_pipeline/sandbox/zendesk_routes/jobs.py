"""Job statuses of bulk organization jobs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from connector_pipeline import settings
from connector_pipeline.sandbox.zendesk_errors import too_many_values
from connector_pipeline.sandbox.zendesk_routes.common import (
    csv_values,
)
from connector_pipeline.sandbox.zendesk_service import ZendeskSandbox

API = settings.ZENDESK_API_PREFIX


def router(sandbox: ZendeskSandbox) -> APIRouter:
    state = sandbox.state
    router = APIRouter(prefix=API)

    @router.get("/job_statuses/show_many")
    def show_many_jobs(ids: str | None = None) -> dict[str, Any]:
        wanted = csv_values(ids)
        if len(wanted) > settings.ZENDESK_MAX_BATCH:
            raise too_many_values()
        with state.lock:
            views = [state.job_view(job_id) for job_id in wanted if job_id in state.job_queue.jobs]
        return {"job_statuses": views}

    @router.get("/job_statuses/{job_id}")
    def show_job(job_id: str) -> dict[str, Any]:
        return {"job_status": state.job_view(job_id)}

    return router
