"""Stage 100,000 Intacct vendor rows through `StagingStore.upsert_vendors`.

Measures a first load into an empty ledger, a re-load where nothing changed (the common
case for a nightly full sync), and a re-load where one row in ten changed. Rows are
streamed from a generator, page by page, as the vendor asset reads them from Intacct, so
peak RSS shows what the store itself holds. On SQLite and on Postgres: a scratch database
is created on the server `--postgres URL` names (default CONNECTOR_TEST_POSTGRES_URL, else
the local server) and dropped afterwards; `--postgres ""` leaves Postgres out.

Usage: python -m bench.stage_vendors [--rows N] [--postgres URL]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import main, peak_rss_mib, postgres_server
from connector_pipeline import settings
from connector_pipeline.domain import VendorRow
from connector_pipeline.staging import StagingStore, UpsertCounts
from connector_pipeline.staging.schema import intacct_vendors
from connector_pipeline.staging.scratch import scratch_postgres_database

NAME = "stage_vendors"
DEFAULT_ROWS = 100_000
CHANGED_EVERY = 10
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


def _vendor(record_no: int, revision: int) -> VendorRow:
    """A VENDOR record shaped like a `query` result with the fields the mapping reads."""
    vendor_id = f"V{record_no:07d}"
    name = f"Northwind Supplies {record_no}" + (f" rev{revision}" if revision else "")
    modified = BASE_TIME + timedelta(seconds=record_no * 37 + revision)
    raw: dict[str, Any] = {
        "RECORDNO": str(record_no),
        "VENDORID": vendor_id,
        "NAME": name,
        "STATUS": "active" if record_no % 17 else "inactive",
        "VENDTYPE": "Supplier",
        "PARENTID": "",
        "TAXID": f"94-{record_no:07d}",
        "CURRENCY": "USD",
        "TERMNAME": "Net 30",
        "CREDITLIMIT": str(5000 + record_no % 50 * 1000),
        "TOTALDUE": f"{record_no % 9973 * 1.37:.2f}",
        "ONHOLD": "false",
        "COMMENTS": "Preferred supplier for office and facilities.",
        "WHENCREATED": "01/15/2024 09:12:44",
        "WHENMODIFIED": modified.strftime("%m/%d/%Y %H:%M:%S"),
        "DISPLAYCONTACT": {
            "PRINTAS": name,
            "COMPANYNAME": name,
            "CONTACTNAME": f"{name} (AP)",
            "EMAIL1": f"ap+{vendor_id.lower()}@example.com",
            "PHONE1": f"+1 415 555 {record_no % 10_000:04d}",
            "MAILADDRESS": {
                "ADDRESS1": f"{record_no % 900 + 100} Market Street",
                "ADDRESS2": f"Suite {record_no % 40 + 1}",
                "CITY": "San Francisco",
                "STATE": "CA",
                "ZIP": "94105",
                "COUNTRY": "United States",
                "ISOCOUNTRYCODE": "US",
            },
        },
    }
    return VendorRow(
        source_object="VENDOR",
        record_no=record_no,
        vendor_id=vendor_id,
        name=name,
        status=raw["STATUS"],
        when_modified=modified,
        raw=raw,
        content_hash=hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest(),
    )


def vendor_rows(count: int, *, changed_every: int = 0) -> Iterator[VendorRow]:
    for record_no in range(1, count + 1):
        changed = changed_every and record_no % changed_every == 0
        yield _vendor(record_no, 1 if changed else 0)


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m bench.{NAME}")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--postgres", default=postgres_server())
    return parser.parse_args()


def _timed(label: str, rows: int, fn: Any) -> dict[str, Any]:
    started = time.perf_counter()
    outcome = fn()
    seconds = time.perf_counter() - started
    result: dict[str, Any] = {
        f"{label}_s": round(seconds, 3),
        f"{label}_rows_per_s": round(rows / seconds),
        f"peak_rss_mib_after_{label}": round(peak_rss_mib(), 1),
    }
    if isinstance(outcome, UpsertCounts):
        result[f"{label}_counts"] = asdict(outcome)
    return result


def measure(url: str, rows: int) -> dict[str, Any]:
    store = StagingStore.open(url)
    try:
        result: dict[str, Any] = {}
        result |= _timed("first_load", rows, lambda: store.upsert_vendors(vendor_rows(rows)))
        result |= _timed("unchanged_reload", rows, lambda: store.upsert_vendors(vendor_rows(rows)))
        result |= _timed(
            "tenth_changed_reload",
            rows,
            lambda: store.upsert_vendors(vendor_rows(rows, changed_every=CHANGED_EVERY)),
        )
        assert store.count(intacct_vendors) == rows
        return result
    finally:
        store.dispose()


def run() -> dict[str, Any]:
    args = _args()
    results: dict[str, Any] = {"rows": args.rows, "chunk_rows": settings.UPSERT_CHUNK_ROWS}
    # What producing the rows costs (building payloads, hashing), apart from the store.
    results |= _timed("generate_only", args.rows, lambda: sum(1 for _ in vendor_rows(args.rows)))
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = measure(f"sqlite:///{Path(tmp) / 'staging.db'}", args.rows)
    if args.postgres:
        with scratch_postgres_database(args.postgres) as url:
            results["postgres"] = measure(url, args.rows)
    else:
        results["postgres"] = "skipped: --postgres was empty"
    results["peak_rss_mib"] = round(peak_rss_mib(), 1)
    return results


if __name__ == "__main__":
    main(NAME, run)
