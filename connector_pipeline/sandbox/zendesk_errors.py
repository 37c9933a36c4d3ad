"""Error answers of the sandbox Zendesk, in Zendesk's envelopes (fixtures
error_404_record_not_found.json, error_404_invalid_endpoint.json, error_400_too_many_values
.json, error_422_*.json in ../shared/fixtures/zendesk)."""

from __future__ import annotations

from typing import Any

from connector_pipeline import settings


class SandboxInvalid(Exception):
    """A request the real service answers with an error body; `status` and `body` are what
    the sandbox sends back."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(body.get("error"))
        self.status = status
        self.body = body
        self.headers = headers or {}


def record_invalid(field_name: str, description: str, error: str) -> SandboxInvalid:
    return SandboxInvalid(
        422,
        {
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": {field_name: [{"description": description, "error": error}]},
        },
    )


def not_found() -> SandboxInvalid:
    return SandboxInvalid(404, {"error": "RecordNotFound", "description": "Not found"})


def too_many_values() -> SandboxInvalid:
    return SandboxInvalid(
        400,
        {
            "error": "TooManyValues",
            "description": "Parameter  cannot specify more than 100 values",
            "max_count": settings.ZENDESK_MAX_BATCH,
        },
    )


def record_invalid_status() -> SandboxInvalid:
    return SandboxInvalid(
        422,
        {
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": {"status": [{"description": "Status: closed prevents ticket update"}]},
        },
    )


def invalid_endpoint() -> SandboxInvalid:
    """Unknown paths and wrong methods (fixture error_404_invalid_endpoint.json)."""
    return SandboxInvalid(404, {"error": "InvalidEndpoint", "description": "Not found"})
