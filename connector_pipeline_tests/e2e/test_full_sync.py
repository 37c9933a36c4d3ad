"""The product path, end to end against both sandboxes: a full sync of 2,000 vendors and
5,000 tickets over 30 days, tickets whose vendor appears later, an incremental run that
writes exactly what changed, and a no-change run that writes nothing.

One test per phase, on one pipeline per ledger. Each phase is a module-scoped fixture that
runs on top of the phase before it and keeps what the sandboxes and the ledger held right
after it, so each test asserts on its own phase whatever order the tests run in (and a
test run alone runs the phases it needs)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pytest

from connector_pipeline.defs.tickets import (
    LIVE_CURSOR,
    QUARANTINE_UNMATCHED,
    intacct_ticket_records,
    zendesk_tickets,
)
from connector_pipeline.defs.vendors import intacct_vendors, zendesk_organizations
from connector_pipeline.sandbox.scenario import seed_tickets, seed_vendors
from connector_pipeline.staging.scratch import scratch_postgres_database
from connector_pipeline_tests.conftest import postgres_base_url
from connector_pipeline_tests.e2e.harness import (
    TICKET_OBJECT,
    Pipeline,
    count_by_external_id,
    pipeline,
)

VENDORS = 2000
TICKETS = 5000
LATE_VENDORS = [
    ("V90001", "Late Arrival Ltd"),
    ("V90002", "Second Late GmbH"),
    ("V90003", "Third Late SA"),
]


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    events = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key is not None and e.asset_key.path[-1] == asset
    ]
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def ticket_range_tags(days: int = 31) -> dict[str, str]:
    today = datetime.now(UTC).date()
    return {
        "dagster/asset_partition_range_start": (today - timedelta(days=days)).isoformat(),
        "dagster/asset_partition_range_end": today.isoformat(),
    }


def zendesk_writes(p: Pipeline) -> dict[str, dict[str, int]]:
    return p.zendesk_stats()["writes"]


def total(writes: dict[str, Any]) -> int:
    return sum(sum(v.values()) if isinstance(v, dict) else v for v in writes.values())


@dataclass(frozen=True)
class Seen:
    """What the sandboxes and the ledger held at one moment."""

    intacct_vendors: list[dict[str, Any]]
    organizations: list[dict[str, Any]]
    tickets: list[dict[str, Any]]
    records: list[dict[str, Any]]
    unmatched_in_quarantine: int

    @classmethod
    def now(cls, p: Pipeline) -> Seen:
        return cls(
            p.intacct_records("VENDOR"),
            p.organizations(),
            p.tickets(),
            p.intacct_records(TICKET_OBJECT),
            p.store.quarantine_count(QUARANTINE_UNMATCHED),
        )


def check_tickets_landed(seen: Seen) -> tuple[set[int], set[int]]:
    """Every matched ticket has exactly one Intacct record, related to the right vendor;
    returns (matched, unmatched) ticket ids."""
    vendors = {v["VENDORID"].lower(): v for v in seen.intacct_vendors}
    org_vendor = {
        o["id"]: vendors[o["external_id"].lower()]
        for o in seen.organizations
        if o.get("external_id") and o["external_id"].lower() in vendors
    }
    tickets = [t for t in seen.tickets if t["status"] != "deleted"]
    matched = {t["id"] for t in tickets if t.get("organization_id") in org_vendor}
    records = seen.records
    per_ticket = Counter(int(r["ticket_id"]) for r in records)
    assert set(per_ticket) == matched
    assert max(per_ticket.values()) == 1, "a ticket has more than one Intacct record"
    by_id = {t["id"]: t for t in tickets}
    for record in records:
        ticket = by_id[int(record["ticket_id"])]
        vendor = org_vendor[ticket["organization_id"]]
        assert str(record["RVENDOR"]) == str(vendor["RECORDNO"])
        assert record["status"] == ticket["status"]
        assert record["subject"] == " ".join(ticket["subject"].split())
        assert record["name"] == f"ZD-{ticket['id']}"
    return matched, {t["id"] for t in tickets} - matched


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def synced(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    """Both sandboxes seeded, on an empty ledger of each dialect."""
    if request.param == "sqlite":
        with _seeded(f"sqlite:///{tmp_path_factory.mktemp('ledger') / 'staging.db'}") as p:
            yield p
    else:
        with (
            scratch_postgres_database(postgres_base_url(), prefix="mlc_test") as url,
            _seeded(url) as p,
        ):
            yield p


@contextmanager
def _seeded(ledger_url: str) -> Iterator[Pipeline]:
    with pipeline(ledger_url) as p:
        seed_vendors(
            p.sandboxes, vendors=VENDORS, preexisting_fraction=0.05, unlinked_organizations=5
        )
        with p.sandboxes.zendesk() as z:
            # Organizations whose vendor is not in Intacct yet: their tickets wait.
            z.post(
                "/_sandbox/seed",
                json={"organizations": [{"name": n, "external_id": v} for v, n in LATE_VENDORS]},
            ).raise_for_status()
        yield p


@dataclass(frozen=True)
class VendorSync:
    vendors_meta: dict[str, Any]
    orgs_meta: dict[str, Any]
    seen: Seen


@pytest.fixture(scope="module")
def full_vendor_sync(synced: Pipeline) -> VendorSync:
    result = synced.materialize([intacct_vendors, zendesk_organizations])
    return VendorSync(
        metadata(result, "intacct_vendors"),
        metadata(result, "zendesk_organizations"),
        Seen.now(synced),
    )


def test_full_vendor_sync(full_vendor_sync: VendorSync) -> None:
    vendors_meta, orgs_meta = full_vendor_sync.vendors_meta, full_vendor_sync.orgs_meta
    assert vendors_meta["fetched"] == vendors_meta["new"] == VENDORS
    assert orgs_meta["failed"] == 0
    assert orgs_meta["created"] + orgs_meta["updated"] == VENDORS
    preexisting = orgs_meta["updated"]
    assert preexisting > 0  # found by external id, not created again

    intacct_vendor_list = full_vendor_sync.seen.intacct_vendors
    # Migrated vendors without a WHENMODIFIED are read too, and get organizations.
    unstamped = sum(1 for v in intacct_vendor_list if v["WHENMODIFIED"] is None)
    assert vendors_meta["without_whenmodified"] == unstamped > 0
    organizations = full_vendor_sync.seen.organizations
    per_external_id = count_by_external_id(organizations)
    for vendor in intacct_vendor_list:
        assert per_external_id[vendor["VENDORID"].lower()] == 1, vendor["VENDORID"]
    names = Counter(" ".join(o["name"].split()).casefold() for o in organizations)
    assert max(names.values()) == 1, "organization names must be unique"
    assert orgs_meta["name_collisions"] > 0  # the seed has vendors sharing a name
    by_external_id = {o["external_id"].lower(): o for o in organizations if o.get("external_id")}
    for vendor in intacct_vendor_list[:50]:
        org = by_external_id[vendor["VENDORID"].lower()]
        assert org["name"] in (
            vendor["NAME"].strip(),
            f"{vendor['NAME'].strip()} ({vendor['VENDORID']})",
        )
        assert "intacct-vendor" in org["tags"]
        assert ("intacct-inactive" in org["tags"]) == (vendor["STATUS"] != "active")
        city = vendor["DISPLAYCONTACT"]["MAILADDRESS"].get("CITY")
        if city:
            assert city in org["details"]
        assert f"Intacct vendor {vendor['VENDORID']}" in org["notes"]
        assert "TAXID" not in str(org) and str(vendor.get("TAXID")) not in org["notes"]


@dataclass(frozen=True)
class TicketLoad:
    tickets_meta: dict[str, Any]
    records_meta: dict[str, Any]
    seen: Seen
    late_orgs: set[int]


@pytest.fixture(scope="module")
def tickets_over_30_days(synced: Pipeline, full_vendor_sync: VendorSync) -> TicketLoad:
    """Tickets over 30 days, as one ranged run."""
    p = synced
    seed_tickets(p.sandboxes, tickets=TICKETS, days=30)
    result = p.materialize([zendesk_tickets, intacct_ticket_records], tags=ticket_range_tags())
    seen = Seen.now(p)
    late_orgs = {o["id"] for o in seen.organizations if o.get("external_id") in dict(LATE_VENDORS)}
    return TicketLoad(
        metadata(result, "zendesk_tickets"),
        metadata(result, "intacct_ticket_records"),
        seen,
        late_orgs,
    )


def _waiting(load: TicketLoad) -> set[int]:
    return {t["id"] for t in load.seen.tickets if t.get("organization_id") in load.late_orgs}


def test_tickets_over_30_days(tickets_over_30_days: TicketLoad) -> None:
    load = tickets_over_30_days
    assert load.tickets_meta["fetched"] == TICKETS
    records_meta = load.records_meta
    matched, unmatched = check_tickets_landed(load.seen)
    assert records_meta["created"] == len(matched) > 4000
    assert unmatched and load.seen.unmatched_in_quarantine == len(unmatched)
    waiting = _waiting(load)
    assert waiting and waiting <= unmatched


@dataclass(frozen=True)
class LateLinks:
    vendors_meta: dict[str, Any]
    orgs_meta: dict[str, Any]
    records_meta: dict[str, Any]
    seen: Seen


@pytest.fixture(scope="module")
def late_vendors_linked(synced: Pipeline, tickets_over_30_days: TicketLoad) -> LateLinks:
    """The late vendors appear in Intacct: their organizations are linked, not duplicated,
    and the waiting tickets are written without anyone asking."""
    p = synced
    with p.sandboxes.intacct() as i:
        i.post(
            "/_sandbox/vendors",
            json={"vendors": [{"VENDORID": v, "NAME": n} for v, n in LATE_VENDORS]},
        ).raise_for_status()
    result = p.materialize([intacct_vendors, zendesk_organizations])
    vendors_meta = metadata(result, "intacct_vendors")
    orgs_meta = metadata(result, "zendesk_organizations")
    result = p.materialize([intacct_ticket_records])
    return LateLinks(
        vendors_meta, orgs_meta, metadata(result, "intacct_ticket_records"), Seen.now(p)
    )


def test_late_vendors_are_linked_and_their_tickets_written(
    tickets_over_30_days: TicketLoad, late_vendors_linked: LateLinks
) -> None:
    late = late_vendors_linked
    waiting = _waiting(tickets_over_30_days)
    matched, _ = check_tickets_landed(tickets_over_30_days.seen)
    assert late.vendors_meta["new"] == len(LATE_VENDORS)
    assert late.orgs_meta["created"] == 0
    assert late.orgs_meta["updated"] == len(LATE_VENDORS)
    assert late.records_meta["created"] == len(waiting)
    matched_after, unmatched_after = check_tickets_landed(late.seen)
    assert matched_after == matched | waiting
    assert late.seen.unmatched_in_quarantine == len(unmatched_after)


@dataclass(frozen=True)
class Incremental:
    changed_vendors: list[Any]
    changed_tickets: list[int]
    vendors_meta: dict[str, Any]
    orgs_meta: dict[str, Any]
    zendesk_written: int
    tickets_meta: dict[str, Any]
    live_cursor_moved: bool
    records_meta: dict[str, Any]
    intacct_written: int
    records: dict[int, dict[str, Any]]


@pytest.fixture(scope="module")
def incremental(
    synced: Pipeline, tickets_over_30_days: TicketLoad, late_vendors_linked: LateLinks
) -> Incremental:
    """20 vendors and 50 tickets change in the sandboxes; one vendor sync, one live poll."""
    p = synced
    matched, _ = check_tickets_landed(tickets_over_30_days.seen)
    with p.sandboxes.intacct() as i:
        changed_vendors = i.post("/_sandbox/vendors/modify", json={"count": 20}).json()["modified"]
    updatable = {t["id"] for t in p.tickets() if t["status"] not in ("closed", "deleted")}
    changed_tickets = sorted(matched & updatable)[:50]
    with p.sandboxes.zendesk() as z:
        for ticket_id in changed_tickets:
            z.patch(
                f"/_sandbox/tickets/{ticket_id}", json={"priority": "urgent"}
            ).raise_for_status()
    zendesk_before = zendesk_writes(p)
    intacct_before = p.intacct_stats()
    live_before = p.store.get_cursor(LIVE_CURSOR)
    result = p.materialize([intacct_vendors, zendesk_organizations])
    vendors_meta = metadata(result, "intacct_vendors")
    orgs_meta = metadata(result, "zendesk_organizations")
    zendesk_written = total(zendesk_writes(p)) - total(zendesk_before)
    today = datetime.now(UTC).date().isoformat()
    result = p.materialize([zendesk_tickets, intacct_ticket_records], partition_key=today)
    intacct_after = p.intacct_stats()
    return Incremental(
        changed_vendors=changed_vendors,
        changed_tickets=changed_tickets,
        vendors_meta=vendors_meta,
        orgs_meta=orgs_meta,
        zendesk_written=zendesk_written,
        tickets_meta=metadata(result, "zendesk_tickets"),
        live_cursor_moved=p.store.get_cursor(LIVE_CURSOR) != live_before,
        records_meta=metadata(result, "intacct_ticket_records"),
        intacct_written=intacct_after["writes"].get(TICKET_OBJECT, 0)
        - intacct_before["writes"].get(TICKET_OBJECT, 0),
        records={int(r["ticket_id"]): r for r in p.intacct_records(TICKET_OBJECT)},
    )


def test_incremental_writes_exactly_what_changed(incremental: Incremental) -> None:
    run = incremental
    assert len(run.changed_vendors) == 20
    assert run.vendors_meta["changed"] == 20
    orgs_meta = run.orgs_meta
    assert (orgs_meta["created"], orgs_meta["updated"], orgs_meta["failed"]) == (0, 20, 0)
    assert run.zendesk_written == 20
    tickets_meta = run.tickets_meta
    assert tickets_meta["resumed_from_cursor"] and tickets_meta["mode"] == "live"
    assert tickets_meta["changed"] == 50
    assert run.live_cursor_moved
    records_meta = run.records_meta
    assert (records_meta["created"], records_meta["updated"]) == (0, 50)
    assert run.intacct_written == 50
    incremental_calls = orgs_meta["api_calls"] + records_meta["api_calls"]
    assert incremental_calls <= 10
    assert all(run.records[t]["priority"] == "urgent" for t in run.changed_tickets)


@dataclass(frozen=True)
class Quiet:
    orgs_meta: dict[str, Any]
    records_meta: dict[str, Any]
    zendesk_unchanged: bool
    intacct_unchanged: bool
    intacct_writes: dict[str, Any]
    zendesk_writes: dict[str, Any]


@pytest.fixture(scope="module")
def nothing_changed(synced: Pipeline, incremental: Incremental) -> Quiet:
    p = synced
    zendesk_before, intacct_before = zendesk_writes(p), p.intacct_stats()
    result = p.materialize([intacct_vendors, zendesk_organizations])
    orgs_meta = metadata(result, "zendesk_organizations")
    today = datetime.now(UTC).date().isoformat()
    result = p.materialize([zendesk_tickets, intacct_ticket_records], partition_key=today)
    return Quiet(
        orgs_meta=orgs_meta,
        records_meta=metadata(result, "intacct_ticket_records"),
        zendesk_unchanged=zendesk_writes(p) == zendesk_before,
        intacct_unchanged=p.intacct_stats()["writes"] == intacct_before["writes"],
        intacct_writes=p.intacct_stats()["writes"],
        zendesk_writes=zendesk_writes(p),
    )


def test_nothing_changed_writes_nothing(nothing_changed: Quiet) -> None:
    quiet = nothing_changed
    assert quiet.orgs_meta["api_calls"] == 0
    assert quiet.orgs_meta["unchanged"] == VENDORS + len(LATE_VENDORS)
    assert quiet.records_meta["api_calls"] == 0
    assert quiet.zendesk_unchanged
    assert quiet.intacct_unchanged


def test_data_moves_only_as_promised(nothing_changed: Quiet) -> None:
    assert set(nothing_changed.intacct_writes) <= {TICKET_OBJECT}
    writes = nothing_changed.zendesk_writes
    assert set(writes) <= {"organization", "ticket"}
    assert sum(writes.get("ticket", {}).values()) == 0, "the connector never changes tickets"
