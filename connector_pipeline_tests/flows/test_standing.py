"""The standing flows against in-memory Intacct and Zendesk, on both ledgers (the
standing tables' SQL is exercised here, so SQLite and Postgres both run)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from connector_pipeline.flows.standing import (
    QUARANTINE_STANDING,
    StandingOptions,
    StandingPublish,
    StandingRead,
    standing_cursor,
)
from connector_pipeline.staging import StagingStore
from connector_pipeline.sync.standing import StandingMapping
from connector_pipeline.sync.vendors import OrganizationMapping, stage_row
from connector_pipeline_tests.flows.fakes import Log
from connector_pipeline_tests.flows.standing_fakes import (
    FakeLedgerIntacct,
    FakeOrganizationFields,
)

TODAY = date(2026, 11, 26)
FIELDS = {
    "band": "standing",
    "total_due": "total_due",
    "overdue_amount": "overdue",
    "oldest_days_overdue": "days_overdue",
    "open_count": "open_items",
    "on_hold": "on_hold",
    "credit_limit": "credit_limit",
    "last_payment_date": "last_payment",
    "currency": "currency",
}
MAPPING = StandingMapping.from_dict(
    {"fields": FIELDS, "thresholds": {"watch_days_overdue": 1, "hold_days_overdue": 60}}
)


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[StagingStore]:
    store = StagingStore.open(ledger_url)
    try:
        yield store
    finally:
        store.dispose()


class World:
    """Two vendors with organizations in Zendesk, and the flows to run against them."""

    def __init__(self, store: StagingStore) -> None:
        self.store = store
        self.intacct = FakeLedgerIntacct()
        self.zendesk = FakeOrganizationFields()
        self.log = Log()
        for n in (1, 2):
            self.stage_vendor(n)
            self.zendesk.organizations[500 + n] = {"id": 500 + n, "organization_fields": {}}
            store.upsert_vendor_links(
                [
                    {
                        "external_id": f"V{n}",
                        "source_object": "VENDOR",
                        "vendor_id": f"V{n}",
                        "organization_id": 500 + n,
                    }
                ]
            )

    def stage_vendor(self, n: int, **fields: Any) -> None:
        record = {
            "RECORDNO": n,
            "VENDORID": f"V{n}",
            "NAME": f"Vendor {n}",
            "STATUS": "active",
            "ONHOLD": "false",
            "CREDITLIMIT": "10000",
            "CURRENCY": "USD",
            "WHENMODIFIED": datetime(2026, 10, 1, tzinfo=UTC),
            **fields,
        }
        self.store.upsert_vendors([stage_row("VENDOR", record)])

    def read(self, **options: Any) -> Any:
        flow = StandingRead(
            self.intacct, self.store, ("VENDOR",), StandingOptions(**options), self.log
        )
        return flow.run()

    def publish(
        self, today: date = TODAY, mapping: StandingMapping = MAPPING, **options: Any
    ) -> Any:
        flow = StandingPublish(
            self.zendesk,
            self.store,
            OrganizationMapping(),
            mapping,
            ("VENDOR",),
            StandingOptions(**options),
            today,
            self.log,
        )
        return flow.run()

    def fields(self, n: int) -> dict[str, Any]:
        return dict(self.zendesk.organizations[500 + n]["organization_fields"])


@pytest.fixture
def world(ledger: StagingStore) -> World:
    w = World(ledger)
    w.read()
    w.publish()
    return w


def test_first_publish_writes_good_standing_for_every_linked_vendor(world: World) -> None:
    assert world.fields(1) == {
        "standing": "ap-good",
        "total_due": 0.0,
        "overdue": 0.0,
        "days_overdue": 0,
        "open_items": 0,
        "on_hold": False,
        "credit_limit": 10000.0,
        "last_payment": None,
        "currency": "USD",
    }


def test_a_bill_posted_moves_total_due_and_open_count_in_the_next_run(world: World) -> None:
    world.intacct.post_bill("V1", "1200.50", date(2026, 12, 15))
    world.intacct.post_bill("V1", "99.50", date(2026, 12, 20))
    world.intacct.post_bill("V1", "5.00", date(2026, 12, 20), state="Draft")  # not payable
    read = world.read()
    assert read.fetched == {"APBILL": 3, "APPYMT": 0}
    result = world.publish()
    assert result.metadata()["updated"] == 1 and result.unchanged == 1
    assert world.fields(1)["total_due"] == 1300.0
    assert world.fields(1)["open_items"] == 2
    assert world.fields(1)["standing"] == "ap-good"
    assert world.fields(2)["total_due"] == 0.0


def test_a_payment_lowers_total_due_and_sets_the_last_payment_date(world: World) -> None:
    bill = world.intacct.post_bill("V2", "500.00", date(2026, 12, 1))
    other = world.intacct.post_bill("V2", "100.00", date(2026, 12, 1))
    world.read()
    world.publish()
    world.intacct.pay(bill, "500.00", date(2026, 11, 20))
    world.intacct.pay(other, "40.00", date(2026, 11, 24))
    world.read()
    world.publish()
    assert world.fields(2)["total_due"] == 60.0
    assert world.fields(2)["open_items"] == 1
    assert world.fields(2)["last_payment"] == "2026-11-24"


def test_a_due_date_passing_moves_overdue_and_band_with_nothing_changed_in_intacct(
    world: World,
) -> None:
    world.intacct.post_bill("V1", "300.00", date(2026, 11, 30))
    world.read()
    world.publish(today=date(2026, 11, 26))
    assert world.fields(1)["standing"] == "ap-good"
    calls = world.intacct.http_calls
    # Nothing changed in Intacct: one request (which re-reads the watermark's second).
    world.read()
    world.publish(today=date(2026, 12, 3))
    assert world.intacct.http_calls == calls + 1
    assert world.fields(1)["overdue"] == 300.0
    assert world.fields(1)["days_overdue"] == 3
    assert world.fields(1)["standing"] == "ap-watch"
    world.publish(today=date(2027, 2, 1))  # 63 days late: past hold_days_overdue
    assert world.fields(1)["standing"] == "ap-hold"


def test_a_vendor_put_on_hold_moves_the_band_to_hold(world: World) -> None:
    world.stage_vendor(2, ONHOLD="true", WHENMODIFIED=datetime(2026, 11, 2, tzinfo=UTC))
    world.publish()
    assert world.fields(2)["standing"] == "ap-hold"
    assert world.fields(2)["on_hold"] is True


def test_privacy_mode_writes_the_band_only(ledger: StagingStore) -> None:
    w = World(ledger)
    w.intacct.post_bill("V1", "10.00", date(2026, 1, 1))
    w.read()
    private = StandingMapping.from_dict({"fields": FIELDS, "privacy": "band_only"})
    w.publish(mapping=private)
    assert w.fields(1) == {"standing": "ap-hold"}


def test_a_dry_run_previews_standing_changes_and_writes_nothing(world: World) -> None:
    world.intacct.post_bill("V1", "75.00", date(2026, 12, 15))
    read = world.read(dry_run=True)
    assert read.staged == 1
    assert world.store.get_cursor(standing_cursor("APBILL")) is None
    world.read()
    calls = world.zendesk.http_calls
    result = world.publish(dry_run=True)
    assert world.zendesk.http_calls == calls
    assert result.metadata()["would_update"] == 1
    assert result.preview[0]["external_id"] == "v1"
    assert '"total_due": 75.0' in result.preview[0]["fields"]
    assert world.fields(1)["total_due"] == 0.0


def test_an_unchanged_day_writes_nothing(world: World) -> None:
    intacct_calls, zendesk_calls = world.intacct.http_calls, world.zendesk.http_calls
    read = world.read()
    result = world.publish()
    assert world.intacct.http_calls - intacct_calls == 1
    assert world.zendesk.http_calls == zendesk_calls
    assert read.metadata()["staged"] == 0
    assert result.metadata()["updated"] == 0 and result.unchanged == 2


def test_the_watermark_resumes_where_the_last_read_ended(world: World) -> None:
    for n in range(7):  # page size 3: three pages
        world.intacct.post_bill("V1", "1.00", date(2026, 12, 1 + n))
    assert world.read().fetched["APBILL"] == 7
    world.intacct.post_bill("V1", "1.00", date(2026, 12, 20))
    # The whole second of the watermark is read again (one-second precision), no more.
    assert world.read().fetched["APBILL"] <= 2


def test_a_record_that_cannot_be_staged_is_quarantined_and_the_read_goes_on(
    world: World,
) -> None:
    world.intacct.add_raw(
        "APBILL", {"RECORDNO": "77", "VENDORID": "V1", "STATE": "Posted", "TOTALDUE": "abc"}
    )
    world.intacct.post_bill("V1", "10.00", date(2026, 12, 1))
    result = world.read()
    assert result.invalid == 1 and result.staged == 1
    keys = [item.key for item in world.store.quarantine_list("intacct_record")]
    assert keys == ["APBILL:77"]
    world.publish()
    assert world.fields(1)["total_due"] == 10.0


def test_a_refused_write_is_quarantined_and_tried_again(world: World) -> None:
    world.intacct.post_bill("V1", "10.00", date(2026, 12, 1))
    world.read()
    world.zendesk.refuse.add(501)
    result = world.publish()
    assert list(result.failed) == ["v1"]
    assert [i.key for i in world.store.quarantine_list(QUARANTINE_STANDING)] == ["v1"]
    world.zendesk.refuse.clear()
    assert world.publish().metadata()["updated"] == 1
    assert world.store.quarantine_list(QUARANTINE_STANDING) == []


def test_vendors_without_an_organization_are_counted_not_written(ledger: StagingStore) -> None:
    w = World(ledger)
    w.stage_vendor(3)
    result = w.publish()
    assert result.not_linked == 1 and result.metadata()["updated"] == 2


def test_a_complete_read_drops_bills_deleted_in_intacct(world: World) -> None:
    kept = world.intacct.post_bill("V1", "10.00", date(2026, 12, 1))
    gone = world.intacct.post_bill("V1", "90.00", date(2026, 12, 1))
    world.read()
    world.publish()
    assert world.fields(1)["total_due"] == 100.0
    del world.intacct.objects["APBILL"][gone]
    assert world.read().removed == 0  # an incremental read can't tell
    result = world.read(full_refresh=True)
    assert result.removed == 1 and result.metadata()["removed"] == 1
    world.publish()
    assert world.fields(1)["total_due"] == 10.0
    assert kept in world.intacct.objects["APBILL"]


def test_customers_stand_on_invoices_and_receipts(ledger: StagingStore) -> None:
    w = World(ledger)
    w.store.upsert_vendors(
        [
            stage_row(
                "CUSTOMER",
                {
                    "RECORDNO": 9,
                    "CUSTOMERID": "C9",
                    "NAME": "Customer 9",
                    "CREDITLIMIT": "",
                    "WHENMODIFIED": datetime(2026, 10, 1, tzinfo=UTC),
                },
            )
        ]
    )
    w.store.upsert_vendor_links(
        [
            {
                "external_id": "C9",
                "source_object": "CUSTOMER",
                "vendor_id": "C9",
                "organization_id": 509,
            }
        ]
    )
    w.zendesk.organizations[509] = {"id": 509}
    w.intacct.add_raw(
        "ARINVOICE",
        {
            "RECORDNO": "31",
            "CUSTOMERID": "C9",
            "STATE": "Posted",
            "WHENDUE": "10/01/2026",
            "TOTALDUE": "250.00",
        },
    )
    w.intacct.add_raw(
        "ARPYMT",
        {"RECORDNO": "32", "CUSTOMERID": "C9", "STATE": "Complete", "WHENPAID": "11/02/2026"},
    )
    StandingRead(w.intacct, w.store, ("CUSTOMER",), StandingOptions(), w.log).run()
    StandingPublish(
        w.zendesk,
        w.store,
        OrganizationMapping(),
        MAPPING,
        ("CUSTOMER",),
        StandingOptions(),
        TODAY,
        w.log,
    ).run()
    fields = w.zendesk.organizations[509]["organization_fields"]
    assert fields["standing"] == "ar-watch"
    assert (fields["overdue"], fields["days_overdue"]) == (250.0, 56)
    assert fields["last_payment"] == "2026-11-02" and fields["credit_limit"] is None


def test_a_record_colliding_by_case_publishes_no_standing_over_the_organization(
    ledger: StagingStore,
) -> None:
    """`v1` equals `V1` but for case: the organization is V1's (the older record), so only
    V1's standing is written, and an unchanged day stays unchanged rather than flipping
    between the two records."""
    w = World(ledger)
    w.stage_vendor(3, VENDORID="v1", ONHOLD="true")
    first = w.publish()
    assert first.metadata()["updated"] == 2
    assert w.fields(1)["on_hold"] is False
    again = w.publish()
    assert again.metadata()["updated"] == 0


def test_an_unreadable_credit_limit_is_quarantined_until_fixed(ledger: StagingStore) -> None:
    w = World(ledger)
    w.stage_vendor(2, CREDITLIMIT="ten thousand")
    w.read()
    w.publish()
    [item] = ledger.quarantine_list(QUARANTINE_STANDING)
    assert "V2" in item.reason and "'ten thousand'" in item.reason
    assert w.fields(2)["credit_limit"] is None
    w.stage_vendor(2, CREDITLIMIT="5000")
    w.publish()
    assert ledger.quarantine_list(QUARANTINE_STANDING) == []
    assert w.fields(2)["credit_limit"] == 5000.0
