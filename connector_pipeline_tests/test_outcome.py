"""The write outcome each client produces from the error it parsed: one kind per cause,
read from the service's codes (and, where the service gives no code, from its text in
the client's own table), never by the code that consumes it."""

from __future__ import annotations

import pytest

from connector_pipeline.intacct.errors import error_detail, write_failure_kind
from connector_pipeline.outcome import FailureKind, WriteOutcome
from connector_pipeline.zendesk import JobStatus
from connector_pipeline.zendesk.jobs import failure_kind


@pytest.mark.parametrize(
    ("errors", "kind"),
    [
        ([("BL34000061", "Another Class with the given value(s) UT01 already exists")], "conflict"),
        ([("BL01001973", "Cannot find zendesk_ticket with key '9' to update.")], "not_found"),
        ([("BL01001973", "Field ticket_id must be an integer; got 'x'")], "invalid"),
        (
            [("XL03000009", "The entire transaction in this operation has been rolled back")],
            "unknown",
        ),
        ([], "unknown"),
    ],
)
def test_intacct_write_failures_by_errorno_and_text(
    errors: list[tuple[str, str]], kind: str
) -> None:
    details = [error_detail(errorno, description2=text) for errorno, text in errors]
    assert write_failure_kind(details) is FailureKind(kind)


@pytest.mark.parametrize(
    ("error", "details", "kind"),
    [
        ("OrganizationUpdateFailed", "Name:  Acme has already been taken", "duplicate_name"),
        ("OrganizationCreateFailed", "External ID: V1 has already been taken", "conflict"),
        ("OrganizationUpdateFailed", "Not found", "not_found"),
        ("RecordNotFound", None, "not_found"),
        ("OrganizationUpdateFailed", "Notes is too long", "invalid"),
        ("JobFailed", "job V3-x ended failed", "unknown"),
    ],
)
def test_zendesk_bulk_failures_by_code_and_details(
    error: str, details: str | None, kind: str
) -> None:
    assert failure_kind(error, details) is FailureKind(kind)


def test_a_bulk_item_carries_its_outcome() -> None:
    job = JobStatus.from_api(
        {
            "id": "V3-y",
            "status": "completed",
            "results": [
                {"action": "update", "id": 11, "status": "Updated", "success": True},
                {"index": 1, "error": "OrganizationUpdateFailed", "id": 12, "details": "Not found"},
            ],
        }
    )
    ok, gone = (r.outcome for r in job.outcome_for([{"id": 11}, {"id": 12}]))
    assert ok == WriteOutcome.written("11")
    assert gone == WriteOutcome(
        False, "12", FailureKind.NOT_FOUND, "OrganizationUpdateFailed: Not found"
    )
