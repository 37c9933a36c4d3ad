"""The product path, end to end against both sandboxes: a full sync of 2,000 vendors and
5,000 tickets over 30 days, tickets whose vendor appears later, an incremental run that
writes exactly what changed, and a no-change run that writes nothing."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from connector_pipeline.defs.tickets import (
    LIVE_CURSOR,
    QUARANTINE_UNMATCHED,
    intacct_ticket_records,
    zendesk_tickets,
)
from connector_pipeline.defs.vendors import intacct_vendors, zendesk_organizations
from connector_pipeline.sandbox.scenario import seed_tickets, seed_vendors
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
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == asset]
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


def check_tickets_landed(p: Pipeline) -> tuple[set[int], set[int]]:
    """Every matched ticket has exactly one Intacct record, related to the right vendor;
    returns (matched, unmatched) ticket ids."""
    vendors = {v["VENDORID"].lower(): v for v in p.intacct_records("VENDOR")}
    org_vendor = {
        o["id"]: vendors[o["external_id"].lower()]
        for o in p.organizations()
        if o.get("external_id") and o["external_id"].lower() in vendors
    }
    tickets = [t for t in p.tickets() if t["status"] != "deleted"]
    matched = {t["id"] for t in tickets if t.get("organization_id") in org_vendor}
    records = p.intacct_records(TICKET_OBJECT)
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


def test_full_sync_incremental_and_late_links(ledger_url: str) -> None:
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

        # --- full vendor sync
        result = p.materialize([intacct_vendors, zendesk_organizations])
        vendors_meta = metadata(result, "intacct_vendors")
        orgs_meta = metadata(result, "zendesk_organizations")
        assert vendors_meta["fetched"] == vendors_meta["new"] == VENDORS
        assert orgs_meta["failed"] == 0
        assert orgs_meta["created"] + orgs_meta["updated"] == VENDORS
        preexisting = orgs_meta["updated"]
        assert preexisting > 0  # found by external id, not created again

        intacct_vendor_list = p.intacct_records("VENDOR")
        # Migrated vendors without a WHENMODIFIED are read too, and get organizations.
        unstamped = sum(1 for v in intacct_vendor_list if v["WHENMODIFIED"] is None)
        assert vendors_meta["without_whenmodified"] == unstamped > 0
        organizations = p.organizations()
        per_external_id = count_by_external_id(organizations)
        for vendor in intacct_vendor_list:
            assert per_external_id[vendor["VENDORID"].lower()] == 1, vendor["VENDORID"]
        names = Counter(" ".join(o["name"].split()).casefold() for o in organizations)
        assert max(names.values()) == 1, "organization names must be unique"
        assert orgs_meta["name_collisions"] > 0  # the seed has vendors sharing a name
        by_external_id = {
            o["external_id"].lower(): o for o in organizations if o.get("external_id")
        }
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

        # --- tickets over 30 days, as one ranged run
        seed_tickets(p.sandboxes, tickets=TICKETS, days=30)
        result = p.materialize([zendesk_tickets, intacct_ticket_records], tags=ticket_range_tags())
        assert metadata(result, "zendesk_tickets")["fetched"] == TICKETS
        records_meta = metadata(result, "intacct_ticket_records")
        matched, unmatched = check_tickets_landed(p)
        assert records_meta["created"] == len(matched) > 4000
        assert unmatched and p.store.quarantine_count(QUARANTINE_UNMATCHED) == len(unmatched)
        late_orgs = {
            o["id"] for o in p.organizations() if o.get("external_id") in dict(LATE_VENDORS)
        }
        waiting = {t["id"] for t in p.tickets() if t.get("organization_id") in late_orgs}
        assert waiting and waiting <= unmatched

        # --- the late vendors appear in Intacct: their organizations are linked, not
        # duplicated, and the waiting tickets are written without anyone asking
        with p.sandboxes.intacct() as i:
            i.post(
                "/_sandbox/vendors",
                json={"vendors": [{"VENDORID": v, "NAME": n} for v, n in LATE_VENDORS]},
            ).raise_for_status()
        result = p.materialize([intacct_vendors, zendesk_organizations])
        assert metadata(result, "intacct_vendors")["new"] == len(LATE_VENDORS)
        assert metadata(result, "zendesk_organizations")["created"] == 0
        assert metadata(result, "zendesk_organizations")["updated"] == len(LATE_VENDORS)
        result = p.materialize([intacct_ticket_records])
        assert metadata(result, "intacct_ticket_records")["created"] == len(waiting)
        matched_after, unmatched_after = check_tickets_landed(p)
        assert matched_after == matched | waiting
        assert p.store.quarantine_count(QUARANTINE_UNMATCHED) == len(unmatched_after)

        # --- incremental: 20 vendors and 50 tickets change; exactly those are written
        with p.sandboxes.intacct() as i:
            changed_vendors = i.post("/_sandbox/vendors/modify", json={"count": 20}).json()[
                "modified"
            ]
        assert len(changed_vendors) == 20
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
        assert metadata(result, "intacct_vendors")["changed"] == 20
        orgs_meta = metadata(result, "zendesk_organizations")
        assert (orgs_meta["created"], orgs_meta["updated"], orgs_meta["failed"]) == (0, 20, 0)
        assert total(zendesk_writes(p)) - total(zendesk_before) == 20
        today = datetime.now(UTC).date().isoformat()
        result = p.materialize([zendesk_tickets, intacct_ticket_records], partition_key=today)
        tickets_meta = metadata(result, "zendesk_tickets")
        assert tickets_meta["resumed_from_cursor"] and tickets_meta["mode"] == "live"
        assert tickets_meta["changed"] == 50
        assert p.store.get_cursor(LIVE_CURSOR) != live_before
        records_meta = metadata(result, "intacct_ticket_records")
        assert (records_meta["created"], records_meta["updated"]) == (0, 50)
        intacct_after = p.intacct_stats()
        assert (
            intacct_after["writes"].get(TICKET_OBJECT, 0)
            - intacct_before["writes"].get(TICKET_OBJECT, 0)
            == 50
        )
        incremental_calls = orgs_meta["api_calls"] + records_meta["api_calls"]
        assert incremental_calls <= 10
        records = {int(r["ticket_id"]): r for r in p.intacct_records(TICKET_OBJECT)}
        assert all(records[t]["priority"] == "urgent" for t in changed_tickets)

        # --- nothing changed: no writes anywhere, almost no calls
        zendesk_before, intacct_before = zendesk_writes(p), p.intacct_stats()
        result = p.materialize([intacct_vendors, zendesk_organizations])
        assert metadata(result, "zendesk_organizations")["api_calls"] == 0
        assert metadata(result, "zendesk_organizations")["unchanged"] == VENDORS + len(LATE_VENDORS)
        result = p.materialize([zendesk_tickets, intacct_ticket_records], partition_key=today)
        assert metadata(result, "intacct_ticket_records")["api_calls"] == 0
        assert zendesk_writes(p) == zendesk_before
        assert p.intacct_stats()["writes"] == intacct_before["writes"]

        # --- data moves only as promised
        assert set(p.intacct_stats()["writes"]) <= {TICKET_OBJECT}
        writes = zendesk_writes(p)
        assert set(writes) <= {"organization", "ticket"}
        assert sum(writes.get("ticket", {}).values()) == 0, "the connector never changes tickets"
