"""Sage Intacct XML gateway client (no Dagster here): see DESIGN.md for the stable names."""

from connector_pipeline.intacct.client import IntacctClient
from connector_pipeline.intacct.errors import (
    IntacctAuthError,
    IntacctControlError,
    IntacctDeadlineExceeded,
    IntacctError,
    IntacctErrorDetail,
    IntacctMalformedResponse,
    IntacctPermissionError,
    IntacctRateLimited,
    IntacctResponseError,
    IntacctResultError,
    IntacctRetryAfterTooLong,
    IntacctSessionInvalid,
    IntacctTransientError,
    IntacctWriteOutcomeUnknown,
)
from connector_pipeline.intacct.filters import Filter
from connector_pipeline.intacct.results import QueryPage, WriteResult
from connector_pipeline.intacct.text import sanitize_xml_text
from connector_pipeline.intacct.timefmt import UserFormatting
from connector_pipeline.intacct.xml import IntacctResponse, IntacctResult, parse_response

__all__ = [
    "Filter",
    "IntacctAuthError",
    "IntacctClient",
    "IntacctControlError",
    "IntacctDeadlineExceeded",
    "IntacctError",
    "IntacctErrorDetail",
    "IntacctMalformedResponse",
    "IntacctPermissionError",
    "IntacctRateLimited",
    "IntacctResponse",
    "IntacctResponseError",
    "IntacctResult",
    "IntacctResultError",
    "IntacctRetryAfterTooLong",
    "IntacctSessionInvalid",
    "IntacctTransientError",
    "IntacctWriteOutcomeUnknown",
    "QueryPage",
    "UserFormatting",
    "WriteResult",
    "parse_response",
    "sanitize_xml_text",
]
