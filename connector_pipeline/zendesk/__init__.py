"""Zendesk Support API client (no Dagster here): auth, retries, organizations, bulk jobs,
incremental ticket export, webhook signatures."""

from connector_pipeline.zendesk.client import (
    OrganizationExportPage,
    TicketExportPage,
    ZendeskClient,
    parse_export_page,
)
from connector_pipeline.zendesk.errors import (
    ZendeskAuthError,
    ZendeskConflict,
    ZendeskDeadlineExceeded,
    ZendeskError,
    ZendeskInvalid,
    ZendeskNotFound,
    ZendeskRateLimited,
    ZendeskRetryAfterTooLong,
    ZendeskServerError,
    ZendeskTooManyJobs,
    ZendeskTransportError,
    ZendeskUnexpectedResponse,
    parse_error,
)
from connector_pipeline.zendesk.jobs import BulkItemResult, JobStatus

__all__ = [
    "BulkItemResult",
    "JobStatus",
    "OrganizationExportPage",
    "TicketExportPage",
    "ZendeskAuthError",
    "ZendeskClient",
    "ZendeskConflict",
    "ZendeskDeadlineExceeded",
    "ZendeskError",
    "ZendeskInvalid",
    "ZendeskNotFound",
    "ZendeskRateLimited",
    "ZendeskRetryAfterTooLong",
    "ZendeskServerError",
    "ZendeskTooManyJobs",
    "ZendeskTransportError",
    "ZendeskUnexpectedResponse",
    "parse_error",
    "parse_export_page",
]
