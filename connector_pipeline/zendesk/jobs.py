"""Bulk job statuses and their per-record outcome.

`results` shapes differ by job type (reference/zendesk-api.md, section 3), all seen live:
create_many `{"status": "Created", "id": N}` (no index, request order); update_many
success `{"action": "update", "id": N, "status": "Updated", "success": true}` and failure
`{"index": I, "error": "OrganizationUpdateFailed", "id": N, "details": "Name:  X has
already been taken"}`; ticket create_many `{"index": I, "id": N, "account_id": A}`. A job
can be `completed` with failed items, so every item is checked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connector_pipeline.outcome import FailureKind, WriteOutcome

PENDING_STATUSES = frozenset({"queued", "working"})
_SUCCESS_STATUSES = frozenset({"created", "updated", "deleted", "unchanged"})

# Why an item failed, first matching rule wins: (kind, error code, details pattern). A bulk
# job names no cause in its code (OrganizationUpdateFailed / ...CreateFailed for anything),
# only in `details` ("Name:  X has already been taken", reference/zendesk-api.md section 2),
# so this parser reads it once here and nothing above the client reads error text. The
# details of a missing id in update_many are UNCONFIRMED live; the sandbox says "Not found",
# as the RecordNotFound body of a single update does.
_FAILURE_RULES: tuple[tuple[FailureKind, str | None, re.Pattern[str] | None], ...] = (
    (FailureKind.NOT_FOUND, "RecordNotFound", None),
    (FailureKind.UNKNOWN, "JobFailed", None),
    (FailureKind.UNKNOWN, "MissingResult", None),
    (
        FailureKind.DUPLICATE_NAME,
        None,
        re.compile(r"\bname\b.*\b(already been taken|duplicate)", re.I),
    ),
    (FailureKind.CONFLICT, None, re.compile(r"already been taken|duplicate", re.I)),
    (FailureKind.NOT_FOUND, None, re.compile(r"^\s*(not found|RecordNotFound)\b", re.I)),
)


def failure_kind(error: str | None, details: str | None) -> FailureKind:
    """The kind of a failed bulk item (`invalid` when no rule says otherwise)."""
    for kind, code, pattern in _FAILURE_RULES:
        if code is not None and error != code:
            continue
        if pattern is not None and not pattern.search(details or ""):
            continue
        return kind
    return FailureKind.INVALID


@dataclass(frozen=True)
class BulkItemResult:
    """The outcome of one input record of a bulk call; `index` is its position in the
    sequence the caller passed in."""

    index: int
    ok: bool
    id: int | None
    error: str | None = None
    details: str | None = None
    kind: FailureKind | None = None  # None when ok

    @property
    def outcome(self) -> WriteOutcome:
        """The system-neutral outcome of this item."""
        record_id = None if self.id is None else str(self.id)
        if self.ok:
            return WriteOutcome.written(record_id)
        message = ": ".join(p for p in (self.error, self.details) if p)
        return WriteOutcome.failed(self.kind or FailureKind.UNKNOWN, message, record_id)


def _as_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _item_ok(item: Mapping[str, Any]) -> bool:
    if item.get("error"):
        return False
    if "success" in item:
        return bool(item["success"])
    status = str(item.get("status") or "").lower()
    if status:
        return status in _SUCCESS_STATUSES
    # Ticket create_many items carry only index / id / account_id.
    return item.get("id") is not None


def _details_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return str(value)


def _to_result(index: int, item: Mapping[str, Any]) -> BulkItemResult:
    ok = _item_ok(item)
    details = _details_text(item.get("details") or item.get("description"))
    error = None if ok else str(item.get("error") or item.get("status") or "Failed")
    kind = None if ok else failure_kind(error, details)
    return BulkItemResult(index, ok, _as_int(item.get("id")), error, details, kind)


@dataclass(frozen=True)
class JobStatus:
    id: str
    status: str
    job_type: str | None = None
    total: int | None = None
    progress: int | None = None
    message: str | None = None
    raw_results: tuple[dict[str, Any], ...] = ()
    results: tuple[BulkItemResult, ...] = field(default=())

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> JobStatus:
        """Accepts `{"job_status": {...}}` or the inner object."""
        inner = data.get("job_status", data)
        if not isinstance(inner, Mapping):
            raise ValueError("not a job status")
        raw = [dict(item) for item in (inner.get("results") or []) if isinstance(item, Mapping)]
        return cls(
            id=str(inner.get("id")),
            status=str(inner.get("status") or "unknown").lower(),
            job_type=inner.get("job_type"),
            total=_as_int(inner.get("total")),
            progress=_as_int(inner.get("progress")),
            message=inner.get("message"),
            raw_results=tuple(raw),
            results=tuple(_place(raw)),
        )

    @property
    def done(self) -> bool:
        """Terminal: no further polling will change it. Unknown statuses count as done
        (and as failed) rather than being polled forever."""
        return self.status not in PENDING_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status == "completed"

    @property
    def failures(self) -> list[BulkItemResult]:
        return [result for result in self.results if not result.ok]

    def outcome_for(self, inputs: Sequence[Mapping[str, Any]]) -> list[BulkItemResult]:
        """One result per input record, in input order. Items Zendesk indexed keep their
        index; update results without an index are matched by id; the rest fill the
        remaining positions in order. Inputs with no result (or a job that failed as a
        whole) are reported as failed."""
        count = len(inputs)
        if not self.succeeded:
            reason = f"job {self.id} ended {self.status}"
            return [
                BulkItemResult(
                    i, False, _as_int(inputs[i].get("id")), "JobFailed", reason, FailureKind.UNKNOWN
                )
                for i in range(count)
            ]
        placed: dict[int, BulkItemResult] = {}
        pending: list[dict[str, Any]] = []
        for item in self.raw_results:
            index = _as_int(item.get("index"))
            if index is not None and 0 <= index < count and index not in placed:
                placed[index] = _to_result(index, item)
            else:
                pending.append(item)
        by_id = {
            input_id: i
            for i, record in enumerate(inputs)
            if (input_id := _as_int(record.get("id"))) is not None
        }
        unplaced: list[dict[str, Any]] = []
        for item in pending:
            index = by_id.get(_as_int(item.get("id")) or -1)
            if index is not None and index not in placed:
                placed[index] = _to_result(index, item)
            else:
                unplaced.append(item)
        free = (i for i in range(count) if i not in placed)
        for item, index in zip(unplaced, free, strict=False):
            placed[index] = _to_result(index, item)
        return [
            placed.get(i)
            or BulkItemResult(
                i, False, None, "MissingResult", f"job {self.id} had no result", FailureKind.UNKNOWN
            )
            for i in range(count)
        ]


def _place(raw: list[dict[str, Any]]) -> list[BulkItemResult]:
    """Results in their own order, each with its index resolved the way `outcome_for`
    would without knowing the inputs."""
    taken = {i for item in raw if (i := _as_int(item.get("index"))) is not None}
    free = (i for i in range(len(raw) + len(taken)) if i not in taken)
    results = []
    for item in raw:
        index = _as_int(item.get("index"))
        results.append(_to_result(index if index is not None else next(free), item))
    return results
