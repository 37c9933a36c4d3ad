"""Ledger rows shaped like what the assets stage: Intacct VENDOR records and Zendesk
tickets with realistic raw payloads."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from connector_pipeline.domain import TicketRow, VendorRow

BASE_TIME = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)


def content_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def vendor_raw(
    record_no: int, *, name: str | None = None, status: str = "active"
) -> dict[str, Any]:
    vendor_id = f"V{record_no:06d}"
    company = name or f"Acme Supplies {record_no}"
    return {
        "RECORDNO": str(record_no),
        "VENDORID": vendor_id,
        "NAME": company,
        "STATUS": status,
        "VENDTYPE": "Supplier",
        "TAXID": f"94-{record_no:07d}",
        "CURRENCY": "USD",
        "TERMNAME": "Net 30",
        "CREDITLIMIT": "25000",
        "ONHOLD": "false",
        "WHENCREATED": "10/02/2025 09:12:44",
        "WHENMODIFIED": "11/01/2026 01:30:00",
        "DISPLAYCONTACT": {
            "PRINTAS": company,
            "COMPANYNAME": company,
            "EMAIL1": f"ap+{vendor_id.lower()}@example.com",
            "PHONE1": f"+1 415 555 {record_no % 10_000:04d}",
            "MAILADDRESS": {
                "ADDRESS1": f"{record_no % 900 + 100} Market Street",
                "CITY": "San Francisco",
                "STATE": "CA",
                "ZIP": "94105",
                "COUNTRY": "United States",
                "ISOCOUNTRYCODE": "US",
            },
        },
    }


def vendor_row(
    record_no: int,
    *,
    name: str | None = None,
    status: str = "active",
    when_modified: datetime | None = None,
    source_object: str = "VENDOR",
) -> VendorRow:
    raw = vendor_raw(record_no, name=name, status=status)
    return VendorRow(
        source_object=source_object,
        record_no=record_no,
        vendor_id=raw["VENDORID"],
        name=raw["NAME"],
        status=status,
        when_modified=when_modified or BASE_TIME + timedelta(minutes=record_no),
        raw=raw,
        content_hash=content_hash(raw),
    )


def ticket_row(
    ticket_id: int,
    *,
    version: int = 1,
    status: str = "open",
    subject: str | None = None,
    organization_id: int | None = 360000001,
    source: str = "poll",
) -> TicketRow:
    updated = BASE_TIME + timedelta(seconds=version)
    raw = {
        "id": ticket_id,
        "subject": subject or f"Invoice question {ticket_id}",
        "status": status,
        "organization_id": organization_id,
        "updated_at": updated.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generated_timestamp": int(updated.timestamp()),
        "tags": ["billing"],
    }
    return TicketRow(
        ticket_id=ticket_id,
        organization_id=organization_id,
        status=status,
        updated_at=updated,
        generated_timestamp=int(updated.timestamp()),
        version=version,
        raw=raw,
        content_hash=content_hash(raw),
        source=source,
    )
