"""In-memory Intacct bills / payments and Zendesk organization fields for the standing
flows: honest models of the keyset read (first pages of all objects in one request) and
of update_many (one call per 100 organizations)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from connector_pipeline.outcome import FailureKind, WriteOutcome
from connector_pipeline_tests.flows.fakes import Item


class FakeLedgerIntacct:
    """APBILL / APPYMT (and AR) records; every change stamps WHENMODIFIED one second later."""

    def __init__(self, page_size: int = 3) -> None:
        self.page_size = page_size
        self.http_calls = 0
        self.objects: dict[str, dict[int, dict[str, Any]]] = {}
        self._keys = itertools.count(1000)
        self._clock = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

    def _stamp(self) -> datetime:
        self._clock += timedelta(seconds=1)
        return self._clock

    def post_bill(self, vendor_id: str, amount: str, due: date, state: str = "Posted") -> int:
        key = next(self._keys)
        self.objects.setdefault("APBILL", {})[key] = {
            "RECORDNO": str(key),
            "VENDORID": vendor_id,
            "STATE": state,
            "WHENDUE": due.strftime("%m/%d/%Y"),
            "TOTALDUE": amount,
            "CURRENCY": "USD",
            "WHENMODIFIED": self._stamp(),
        }
        return key

    def pay(self, bill: int, amount: str, on: date) -> None:
        record = self.objects["APBILL"][bill]
        due = float(record["TOTALDUE"]) - float(amount)
        record.update(
            TOTALDUE=f"{due:.2f}",
            STATE="Paid" if due <= 0 else "Partially Paid",
            WHENMODIFIED=self._stamp(),
        )
        key = next(self._keys)
        self.objects.setdefault("APPYMT", {})[key] = {
            "RECORDNO": str(key),
            "VENDORID": record["VENDORID"],
            "STATE": "Complete",
            "WHENPAID": on.strftime("%m/%d/%Y"),
            "TOTALENTERED": amount,
            "CURRENCY": "USD",
            "WHENMODIFIED": self._stamp(),
        }

    def add_raw(self, obj: str, record: dict[str, Any]) -> None:
        record = {**record, "WHENMODIFIED": self._stamp()}
        self.objects.setdefault(obj, {})[next(self._keys)] = record

    def _after(self, obj: str, after: tuple[datetime, int] | None) -> list[dict[str, Any]]:
        records = sorted(
            self.objects.get(obj, {}).values(),
            key=lambda r: (
                r["WHENMODIFIED"],
                int(r["RECORDNO"]) if str(r["RECORDNO"]).isdigit() else 0,
            ),
        )
        if after is None:
            return records
        return [
            r
            for r in records
            if (r["WHENMODIFIED"], int(r["RECORDNO"]) if str(r["RECORDNO"]).isdigit() else 0)
            > after
        ]

    def iter_changed_together(
        self, requests: Mapping[str, tuple[Sequence[str], tuple[datetime, int] | None]]
    ) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        self.http_calls += 1  # every object's first page, in one request
        pending = {obj: self._after(obj, after) for obj, (_, after) in requests.items()}
        for obj, records in pending.items():
            for start in range(0, len(records), self.page_size):
                if start:
                    self.http_calls += 1
                yield obj, [dict(r) for r in records[start : start + self.page_size]]


class FakeOrganizationFields:
    """Organizations with organization_fields; update_many merges the fields given."""

    def __init__(self) -> None:
        self.http_calls = 0
        self.update_many_calls = 0
        self.organizations: dict[int, dict[str, Any]] = {}
        self.refuse: set[int] = set()

    def update_many_organizations(self, organizations: Sequence[Any]) -> list[Item]:
        out = []
        for start in range(0, len(organizations), 100):
            self.http_calls += 1
            self.update_many_calls += 1
            for org in organizations[start : start + 100]:
                if org["id"] in self.refuse or org["id"] not in self.organizations:
                    out.append(
                        Item(WriteOutcome(False, None, FailureKind.NOT_FOUND, "RecordNotFound"))
                    )
                    continue
                fields = self.organizations[org["id"]].setdefault("organization_fields", {})
                fields.update(org.get("organization_fields") or {})
                out.append(Item(WriteOutcome(True, str(org["id"]))))
        return out
