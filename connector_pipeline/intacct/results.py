"""What the client hands back: query pages and per-record write outcomes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connector_pipeline.intacct.errors import IntacctErrorDetail, write_failure_kind
from connector_pipeline.intacct.xml import IntacctResult
from connector_pipeline.outcome import WriteOutcome


@dataclass(frozen=True)
class QueryPage:
    records: list[dict[str, Any]]
    count: int
    total_count: int | None
    num_remaining: int | None
    offset: int


@dataclass(frozen=True)
class WriteResult:
    """The outcome for `records[index]` of a create/update call."""

    index: int
    ok: bool
    key: str | None
    record: dict[str, Any] | None
    errors: list[IntacctErrorDetail] = field(default_factory=list)

    @property
    def outcome(self) -> WriteOutcome:
        """The system-neutral outcome, its kind read from the gateway's errors."""
        if self.ok:
            return WriteOutcome.written(self.key)
        message = "; ".join(str(e) for e in self.errors)
        return WriteOutcome.failed(write_failure_kind(self.errors), message, self.key)


def key_field_for(object_name: str) -> str:
    """Standard objects (upper case, e.g. VENDOR) are keyed by RECORDNO; Platform custom
    objects (lower-case integration names) by `id`."""
    return "RECORDNO" if object_name.upper() == object_name else "id"


def _same(a: Any, b: Any) -> bool:
    return str(a).strip() == str(b).strip()


def map_write_results(
    object_name: str,
    records: Sequence[Mapping[str, Any]],
    result: IntacctResult,
    *,
    base_index: int = 0,
) -> list[WriteResult]:
    """Give every input record its outcome.

    On success the gateway returns one element per record, in order. A failed function can
    still have written some records (the failure fixture lists one created record next to
    the errors), so then each returned element is matched to the input whose fields it
    repeats (the key for updates, the ID or name field for creates); inputs left unmatched
    failed with the function's errors.
    """
    key_field = key_field_for(object_name)
    returned = list(result.records)
    if result.ok and len(returned) == len(records):
        return [
            WriteResult(
                base_index + i,
                True,
                _key(out, key_field),
                out,
            )
            for i, out in enumerate(returned)
        ]
    matched: dict[int, dict[str, Any]] = {}
    for out in returned:
        for i, record in enumerate(records):
            if i in matched:
                continue
            shared = [k for k in out if k in record and not isinstance(out[k], dict)]
            if shared and all(_same(out[k], record[k]) for k in shared):
                matched[i] = out
                break
    outcomes = []
    for i in range(len(records)):
        if i in matched:
            out = matched[i]
            outcomes.append(WriteResult(base_index + i, True, _key(out, key_field), out))
        else:
            outcomes.append(WriteResult(base_index + i, False, None, None, list(result.errors)))
    return outcomes


def _key(record: Mapping[str, Any], key_field: str) -> str | None:
    for name in (key_field, key_field.upper(), key_field.lower()):
        value = record.get(name)
        if value not in (None, ""):
            return str(value)
    return None
