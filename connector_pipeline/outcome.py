"""The outcome of writing one record, the same for Intacct and Zendesk.

The clients produce it from the error they parsed (each from its own table of codes), so
no code above them reads error text: links and quarantine decide on `kind` alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FailureKind(StrEnum):
    """Why a record was not written."""

    NOT_FOUND = "not_found"  # the record to update is gone from the service
    DUPLICATE_NAME = "duplicate_name"  # the name is taken by another record (Zendesk)
    INVALID = "invalid"  # the service rejected the content
    CONFLICT = "conflict"  # a record with the same unique value already exists
    UNKNOWN = "unknown"  # no usable answer for this record


@dataclass(frozen=True)
class WriteOutcome:
    """`ok` with the record's `id`; or not, with `kind` and the service's `message`. A
    failed update keeps the id it was sent with."""

    ok: bool
    id: str | None = None
    kind: FailureKind | None = None
    message: str = ""

    @classmethod
    def written(cls, record_id: str | None) -> WriteOutcome:
        return cls(True, record_id)

    @classmethod
    def failed(cls, kind: FailureKind, message: str, record_id: str | None = None) -> WriteOutcome:
        return cls(False, record_id, kind, message or kind.value)
