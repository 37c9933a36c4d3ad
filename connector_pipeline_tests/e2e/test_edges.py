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
