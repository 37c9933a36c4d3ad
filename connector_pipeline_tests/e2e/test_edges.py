"""Edges a connector must survive: same-second changes, malformed vendors, dry runs and
rate limits longer than the client is willing to wait."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from connector_pipeline.defs.common import rate_limits_as_retries
from connector_pipeline.defs.tickets import intacct_ticket_records, zendesk_tickets
from connector_pipeline.defs.vendors import (
    QUARANTINE_SOURCE,
    intacct_vendors,
    zendesk_organizations,
)
from connector_pipeline.intacct import IntacctRateLimited
from connector_pipeline.sandbox.scenario import seed_tickets, seed_vendors
from connector_pipeline.zendesk import ZendeskRateLimited
from connector_pipeline_tests.e2e.harness import TICKET_OBJECT, pipeline
from connector_pipeline_tests.e2e.test_full_sync import metadata, ticket_range_tags


def test_a_change_in_the_watermark_second_with_a_lower_recordno_is_not_missed(
    sqlite_url: str,
) -> None:
    with pipeline(sqlite_url) as p:
        seed_vendors(p.sandboxes, vendors=40)
        p.materialize([intacct_vendors, zendesk_organizations])
        gateway = p.sandboxes.intacct_app.state.sandbox.gateway
        frozen = datetime.now(UTC).replace(microsecond=0)
        gateway.clock = lambda: frozen
        vendors = sorted(p.intacct_records("VENDOR"), key=lambda v: int(v["RECORDNO"]))
        first, last = vendors[0]["VENDORID"], vendors[-1]["VENDORID"]
        with p.sandboxes.intacct() as i:
            i.post("/_sandbox/vendors/modify", json={"vendor_ids": [last]}).raise_for_status()
            result = p.materialize([intacct_vendors, zendesk_organizations])
            assert metadata(result, "intacct_vendors")["changed"] == 1
            # Same second, lower RECORDNO: behind a naive (WHENMODIFIED, RECORDNO) keyset.
            i.post("/_sandbox/vendors/modify", json={"vendor_ids": [first]}).raise_for_status()
        result = p.materialize([intacct_vendors, zendesk_organizations])
        assert metadata(result, "intacct_vendors")["changed"] == 1
        assert metadata(result, "zendesk_organizations")["updated"] == 1


def test_malformed_vendor_is_quarantined_then_synced_once_fixed(sqlite_url: str) -> None:
    with pipeline(sqlite_url) as p:
        seed_vendors(p.sandboxes, vendors=10)
        with p.sandboxes.intacct() as i:
            i.post(
                "/_sandbox/vendors", json={"vendors": [{"VENDORID": "VBAD1", "NAME": ""}]}
            ).raise_for_status()
        result = p.materialize([intacct_vendors, zendesk_organizations])
        assert metadata(result, "intacct_vendors")["invalid"] == 1
        assert metadata(result, "zendesk_organizations")["created"] == 10
        [item] = p.store.quarantine_list(QUARANTINE_SOURCE)
        assert "NAME is empty" in item.reason and "VBAD1" in item.reason

        # Someone fixes the name in Intacct; the next run picks it up by its new
        # WHENMODIFIED, syncs it and resolves the quarantine entry.
        gateway = p.sandboxes.intacct_app.state.sandbox.gateway
        record = gateway.find_by_id("VENDOR", "VBAD1")
        gateway.touch("VENDOR", record, {"NAME": "Fixed Vendor Inc"}, scenario=True)
        result = p.materialize([intacct_vendors, zendesk_organizations])
        assert metadata(result, "zendesk_organizations")["created"] == 1
        assert p.store.quarantine_list(QUARANTINE_SOURCE) == []
        assert any(o.get("external_id") == "VBAD1" for o in p.organizations())


def test_dry_run_shows_what_would_be_written_and_writes_nothing(sqlite_url: str) -> None:
    with pipeline(sqlite_url) as p:
        seed_vendors(p.sandboxes, vendors=25)
        p.materialize([intacct_vendors])
        result = p.materialize(
            [zendesk_organizations], config={"zendesk_organizations": {"dry_run": True}}
        )
        meta = metadata(result, "zendesk_organizations")
        assert meta["would_create"] == 25 and meta["dry_run"]
        assert "| create |" in meta["preview"]
        assert p.organizations() == [] and p.store.vendor_links() == {}

        p.materialize([zendesk_organizations])
        seed_tickets(p.sandboxes, tickets=60, days=5)
        p.materialize([zendesk_tickets], tags=ticket_range_tags(days=6))
        result = p.materialize(
            [intacct_ticket_records], config={"intacct_ticket_records": {"dry_run": True}}
        )
        meta = metadata(result, "intacct_ticket_records")
        assert meta["would_create"] > 0 and "| create |" in meta["preview"]
        assert p.intacct_records(TICKET_OBJECT) == []
        assert p.intacct_stats()["writes"].get(TICKET_OBJECT, 0) == 0


@pytest.mark.parametrize(
    "error",
    [
        ZendeskRateLimited("APIRateLimitExceeded", retry_after=42.0),
        IntacctRateLimited("GW-0010 rate limit", retry_after=42.0),
    ],
)
def test_a_long_rate_limit_becomes_a_dagster_retry_after_the_wait(error: Exception) -> None:
    with pytest.raises(dg.RetryRequested) as raised, rate_limits_as_retries():
        raise error
    assert raised.value.seconds_to_wait == 42.0
    assert raised.value.__cause__ is error


def test_vendors_deleted_in_intacct_are_tagged_by_a_complete_read(sqlite_url: str) -> None:
    def tags_of(external_id: str) -> list[str]:
        [org] = [o for o in p.organizations() if o.get("external_id") == external_id]
        return list(org["tags"])

    with pipeline(sqlite_url) as p:
        seed_vendors(p.sandboxes, vendors=60)
        p.materialize([intacct_vendors, zendesk_organizations])
        with p.sandboxes.intacct() as i:
            gone = i.post("/_sandbox/vendors/delete", json={"count": 3}).json()["deleted"]
        # An incremental read cannot see a deletion: nothing changes.
        result = p.materialize([intacct_vendors, zendesk_organizations])
        assert metadata(result, "intacct_vendors")["deleted"] == 0
        assert metadata(result, "zendesk_organizations")["updated"] == 0

        full = {"full_refresh": True}
        result = p.materialize(
            [intacct_vendors], config={"intacct_vendors": {**full, "dry_run": True}}
        )
        assert metadata(result, "intacct_vendors")["would_mark_deleted"] == 3
        result = p.materialize(
            [intacct_vendors, zendesk_organizations], config={"intacct_vendors": full}
        )
        assert metadata(result, "intacct_vendors")["deleted"] == 3
        assert metadata(result, "zendesk_organizations")["updated"] == 3
        for vendor_id in gone:
            assert "intacct-deleted" in tags_of(vendor_id)  # kept, and tagged
        assert len(p.organizations()) == 60
        # Marked once: the next complete read finds nothing new to mark.
        result = p.materialize([intacct_vendors], config={"intacct_vendors": full})
        assert metadata(result, "intacct_vendors")["deleted"] == 0

        # The VENDORID is used again by a new record: the organization is live again.
        with p.sandboxes.intacct() as i:
            i.post(
                "/_sandbox/vendors", json={"vendors": [{"VENDORID": gone[0], "NAME": "Reborn"}]}
            ).raise_for_status()
        result = p.materialize([intacct_vendors, zendesk_organizations])
        assert metadata(result, "zendesk_organizations")["updated"] == 1
        assert "intacct-deleted" not in tags_of(gone[0])
        assert len(p.organizations()) == 60


def test_a_mass_disappearance_is_withheld_until_confirmed(sqlite_url: str) -> None:
    with pipeline(sqlite_url) as p:
        seed_vendors(p.sandboxes, vendors=60)
        p.materialize([intacct_vendors, zendesk_organizations])
        with p.sandboxes.intacct() as i:
            # As a Web Services user moved to another entity would see it.
            i.post("/_sandbox/vendors/delete", json={"count": 30}).raise_for_status()
        full = {"full_refresh": True}
        result = p.materialize(
            [intacct_vendors, zendesk_organizations], config={"intacct_vendors": full}
        )
        meta = metadata(result, "intacct_vendors")
        assert (meta["deleted"], meta["deletions_withheld"]) == (0, 30)
        assert metadata(result, "zendesk_organizations")["updated"] == 0
        [item] = p.store.quarantine_list(QUARANTINE_SOURCE)
        assert item.key == "deletions:VENDOR" and "30 of 60" in item.reason

        confirmed = {**full, "allow_mass_deletion": True}
        result = p.materialize(
            [intacct_vendors, zendesk_organizations], config={"intacct_vendors": confirmed}
        )
        assert metadata(result, "intacct_vendors")["deleted"] == 30
        assert metadata(result, "zendesk_organizations")["updated"] == 30
        assert p.store.quarantine_list(QUARANTINE_SOURCE) == []


def test_full_refresh_rewrites_only_organizations_edited_in_zendesk(sqlite_url: str) -> None:
    with pipeline(sqlite_url) as p:
        seed_vendors(p.sandboxes, vendors=150)
        p.materialize([intacct_vendors, zendesk_organizations])
        full = {"zendesk_organizations": {"full_refresh": True}}
        result = p.materialize([zendesk_organizations], config=full)
        meta = metadata(result, "zendesk_organizations")
        assert (meta["updated"], meta["drifted"], meta["created"]) == (0, 0, 0)
        assert meta["api_calls"] == 2  # 150 linked organizations read, 100 per call

        # Support agents edit two organizations by hand and delete a third.
        orgs = sorted((o for o in p.organizations() if o.get("external_id")), key=lambda o: o["id"])
        zendesk = p.sandboxes.zendesk_app.state.sandbox.state
        zendesk.update_organization(orgs[0]["id"], {"notes": "edited by hand"})
        zendesk.update_organization(orgs[1]["id"], {"tags": ["someone-elses-tag"]})
        zendesk.delete_organization(orgs[2]["id"])
        result = p.materialize([zendesk_organizations], config=full)
        meta = metadata(result, "zendesk_organizations")
        assert (meta["drifted"], meta["updated"], meta["created"]) == (3, 2, 1)
        restored = {o["external_id"]: o for o in p.organizations() if o.get("external_id")}
        assert restored[orgs[0]["external_id"]]["notes"] == orgs[0]["notes"]
        assert set(restored[orgs[1]["external_id"]]["tags"]) == set(orgs[1]["tags"])
        assert orgs[2]["external_id"] in restored
        assert len(restored) == 150


def test_full_refresh_of_ticket_records_rewrites_nothing_unchanged(sqlite_url: str) -> None:
    with pipeline(sqlite_url) as p:
        seed_vendors(p.sandboxes, vendors=20)
        p.materialize([intacct_vendors, zendesk_organizations])
        seed_tickets(p.sandboxes, tickets=60, days=5)
        result = p.materialize([zendesk_tickets, intacct_ticket_records], tags=ticket_range_tags())
        written = metadata(result, "intacct_ticket_records")["created"]
        assert written > 0
        result = p.materialize(
            [intacct_ticket_records], config={"intacct_ticket_records": {"full_refresh": True}}
        )
        meta = metadata(result, "intacct_ticket_records")
        assert (meta["created"], meta["updated"], meta["unchanged"]) == (0, 0, written)
        assert meta["api_calls"] == 0
