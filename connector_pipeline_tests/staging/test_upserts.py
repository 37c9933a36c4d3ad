"""Every write to the ledger is an idempotent upsert, and says what it did."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from connector_pipeline import settings
from connector_pipeline.domain import DELETED
from connector_pipeline.staging import StagingStore, UpsertCounts
from connector_pipeline.staging.schema import intacct_vendors
from connector_pipeline_tests.staging.factories import content_hash, ticket_row, vendor_row


def test_vendor_upsert_is_idempotent_and_counts(store: StagingStore) -> None:
    rows = [vendor_row(n) for n in range(1, 51)]
    assert store.upsert_vendors(rows) == UpsertCounts(new=50)
    first = {r["record_no"]: r for r in store.vendors()}
    assert len(first) == 50
    assert first[7]["raw"] == rows[6]["raw"]
    assert first[7]["vendor_id"] == "V000007"

    assert store.upsert_vendors(rows) == UpsertCounts(unchanged=50)
    again = {r["record_no"]: r for r in store.vendors()}
    # Unchanged content is not rewritten: staged_at stays what the first load set.
    assert all(again[k]["staged_at"] == first[k]["staged_at"] for k in first)

    edited = [
        vendor_row(n, name="Renamed Ltd") if n in (3, 4) else vendor_row(n) for n in range(1, 53)
    ]
    assert store.upsert_vendors(edited) == UpsertCounts(new=2, changed=2, unchanged=48)
    after = {r["record_no"]: r for r in store.vendors()}
    assert len(after) == 52
    assert after[3]["name"] == "Renamed Ltd"
    assert after[3]["raw"]["NAME"] == "Renamed Ltd"
    assert after[3]["content_hash"] == edited[2]["content_hash"]
    assert after[5]["name"] == first[5]["name"]


def test_vendor_source_objects_are_separate_keys(store: StagingStore) -> None:
    counts = store.upsert_vendors(
        [vendor_row(10, source_object="VENDOR"), vendor_row(10, source_object="CUSTOMER")]
    )
    assert counts == UpsertCounts(new=2)
    assert [v["source_object"] for v in store.vendors(["CUSTOMER"])] == ["CUSTOMER"]
    assert len(store.vendors()) == 2


def test_vendor_duplicate_keys_in_one_batch_last_wins(store: StagingStore) -> None:
    batch = [vendor_row(1, name="First"), vendor_row(2), vendor_row(1, name="Second")]
    assert store.upsert_vendors(batch) == UpsertCounts(new=2)
    stored = {v["record_no"]: v["name"] for v in store.vendors()}
    assert stored == {1: "Second", 2: "Acme Supplies 2"}


def test_vendor_duplicates_across_chunks_last_wins(
    store: StagingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "UPSERT_CHUNK_ROWS", 3)
    batch = [vendor_row(n) for n in range(1, 5)] + [vendor_row(2, name="Later")]
    counts = store.upsert_vendors(batch)
    assert counts.new == 4 and counts.changed == 1
    assert {v["record_no"]: v["name"] for v in store.vendors()}[2] == "Later"


def test_ticket_latest_version_wins(store: StagingStore) -> None:
    assert store.upsert_tickets([ticket_row(1, version=10), ticket_row(2, version=10)]) == (
        UpsertCounts(new=2)
    )
    # Same version, same content: nothing to do.
    assert store.upsert_tickets([ticket_row(1, version=10)]) == UpsertCounts(unchanged=1)
    # Older than what is held: stale, counted and ignored.
    counts = store.upsert_tickets(
        [ticket_row(1, version=9, status="closed"), ticket_row(2, version=11, status="solved")]
    )
    assert counts == UpsertCounts(changed=1, stale=1)
    held = {t["ticket_id"]: t for t in store.tickets()}
    assert (held[1]["version"], held[1]["status"]) == (10, "open")
    assert (held[2]["version"], held[2]["status"]) == (11, "solved")
    # Same version with different content replaces (a webhook and the poll can disagree).
    counts = store.upsert_tickets([ticket_row(1, version=10, subject="Edited", source="webhook")])
    assert counts == UpsertCounts(changed=1)
    held = {t["ticket_id"]: t for t in store.tickets([1])}
    assert held[1]["raw"]["subject"] == "Edited"
    assert held[1]["source"] == "webhook"


def test_ticket_newer_version_with_same_content_is_kept(store: StagingStore) -> None:
    store.upsert_tickets([ticket_row(1, version=10)])
    same_content = ticket_row(1, version=10)
    same_content["version"] = 12  # e.g. a webhook echo of a change that altered nothing mapped
    assert store.upsert_tickets([same_content]) == UpsertCounts(unchanged=1)
    assert store.tickets([1])[0]["version"] == 12
    # So a row in between, arriving late, is stale rather than newer.
    assert store.upsert_tickets([ticket_row(1, version=11)]) == UpsertCounts(stale=1)
    assert store.tickets([1])[0]["version"] == 12


def test_ticket_duplicates_in_one_batch_keep_highest_version(store: StagingStore) -> None:
    batch = [
        ticket_row(5, version=3, status="pending"),
        ticket_row(5, version=7, status="solved"),
        ticket_row(5, version=4, status="open"),
    ]
    assert store.upsert_tickets(batch) == UpsertCounts(new=1)
    (held,) = store.tickets([5])
    assert (held["version"], held["status"]) == (7, "solved")


def test_ticket_stale_across_chunks_is_ignored(
    store: StagingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "UPSERT_CHUNK_ROWS", 2)
    batch = [ticket_row(1, version=5), ticket_row(2, version=1), ticket_row(1, version=2)]
    assert store.upsert_tickets(batch) == UpsertCounts(new=2, stale=1)
    assert {t["ticket_id"]: t["version"] for t in store.tickets()} == {1: 5, 2: 1}


def test_vendors_gone_from_intacct_are_marked_and_restored_if_read_again(
    store: StagingStore,
) -> None:
    rows = [vendor_row(n) for n in range(1, 6)]
    store.upsert_vendors(rows)
    assert store.mark_vendors_deleted("VENDOR", [2, 4]) == 2
    assert store.mark_vendors_deleted("CUSTOMER", [1]) == 0  # other source object
    statuses = store.vendor_statuses("VENDOR")
    assert statuses == {1: "active", 2: DELETED, 3: "active", 4: DELETED, 5: "active"}
    # Read again with the very same content, a record is staged again, not skipped.
    assert store.upsert_vendors([rows[1]]) == UpsertCounts(new=0, changed=1, unchanged=0)
    assert store.vendor_statuses("VENDOR")[2] == "active"


def test_an_organization_stands_for_the_live_record_of_a_reused_vendor_id(
    store: StagingStore,
) -> None:
    old, new = vendor_row(3), vendor_row(8)
    new = {**new, "vendor_id": old["vendor_id"]}  # the VENDORID, deleted, then used again
    store.upsert_vendors([old, new])
    store.upsert_vendor_links(
        [
            {
                "external_id": old["vendor_id"],
                "source_object": "VENDOR",
                "vendor_id": old["vendor_id"],
                "organization_id": 4242,
            }
        ]
    )
    assert store.vendors_by_organization() == {4242: ("VENDOR", old["vendor_id"], 8, False)}
    store.mark_vendors_deleted("VENDOR", [3])
    assert store.vendors_by_organization() == {4242: ("VENDOR", old["vendor_id"], 8, False)}
    store.mark_vendors_deleted("VENDOR", [8])
    assert store.vendors_by_organization() == {4242: ("VENDOR", old["vendor_id"], 8, True)}


def test_vendor_links_partial_updates_keep_other_columns(store: StagingStore) -> None:
    written = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    assert (
        store.upsert_vendor_links(
            [
                {
                    "external_id": "V000001",
                    "source_object": "VENDOR",
                    "vendor_id": "V000001",
                    "organization_id": 9001,
                    "written_hash": "h1",
                    "written_at": written,
                },
                {
                    "external_id": "V000002",
                    "source_object": "VENDOR",
                    "vendor_id": "V000002",
                    "organization_id": 9002,
                },
            ]
        )
        == 2
    )
    # A failed write records only the error; the organization and hash stay.
    store.upsert_vendor_links([{"external_id": "v000001", "last_error": "422 name taken"}])
    links = store.vendor_links()
    assert set(links) == {"v000001", "v000002"}  # keys folded to lower case
    one = links["v000001"]
    assert (one["organization_id"], one["written_hash"], one["written_at"]) == (9001, "h1", written)
    assert one["last_error"] == "422 name taken"
    # Lookups are case-insensitive, as Zendesk compares external ids.
    assert set(store.vendor_links(["V000002"])) == {"v000002"}

    # Mixed shapes in one batch; clearing an error with an explicit None.
    store.upsert_vendor_links(
        [
            {"external_id": "V000001", "last_error": None, "written_hash": "h2"},
            {"external_id": "V000002", "organization_id": 9102},
        ]
    )
    links = store.vendor_links()
    assert (links["v000001"]["last_error"], links["v000001"]["written_hash"]) == (None, "h2")
    assert links["v000001"]["organization_id"] == 9001
    assert links["v000002"]["organization_id"] == 9102
    assert links["v000002"]["vendor_id"] == "V000002"

    # Rows for one key apply in order, whatever their shapes.
    store.upsert_vendor_links(
        [
            {"external_id": "V000002", "last_error": "timeout"},
            {"external_id": "V000002", "written_hash": "h9", "last_error": None},
            {"external_id": "V000002", "last_error": "429"},
        ]
    )
    two = store.vendor_links(["v000002"])["v000002"]
    assert (two["written_hash"], two["last_error"]) == ("h9", "429")


def test_vendor_link_partial_row_cannot_create_a_link(store: StagingStore) -> None:
    with pytest.raises(ValueError, match="no link yet"):
        store.upsert_vendor_links(
            [
                {"external_id": "V1", "source_object": "VENDOR", "vendor_id": "V1"},
                {"external_id": "V404", "last_error": "boom"},
            ]
        )
    # The whole call is one transaction: the complete row was not kept either.
    assert store.vendor_links() == {}


def test_ticket_links_upsert(store: StagingStore) -> None:
    store.upsert_ticket_links([{"ticket_id": 1, "last_error": "vendor not linked yet"}])
    store.upsert_ticket_links(
        [{"ticket_id": 1, "record_id": "zd_ticket:17", "vendor_id": "V000001", "written_hash": "x"}]
    )
    store.upsert_ticket_links([{"ticket_id": 1, "record_id": "zd_ticket:17", "written_hash": "x"}])
    links = store.ticket_links()
    assert list(links) == [1]
    assert links[1]["record_id"] == "zd_ticket:17"
    assert links[1]["vendor_id"] == "V000001"
    assert links[1]["last_error"] == "vendor not linked yet"
    assert store.ticket_links([2]) == {}
    # Only a key: inserts once, then does nothing; the count is of distinct links.
    assert store.upsert_ticket_links([{"ticket_id": 2}, {"ticket_id": 2}]) == 1
    assert store.ticket_links([2])[2]["record_id"] is None


def test_tickets_to_load_follows_content_not_clocks(store: StagingStore) -> None:
    """A version staged while another run was writing the older one is still owed, even
    though that run recorded its write later than the new version was staged."""
    v1 = ticket_row(7, version=1)
    store.upsert_tickets([v1])
    assert [t["ticket_id"] for t in store.tickets_to_load()] == [7]
    v2 = ticket_row(7, version=2, subject="Changed meanwhile")
    store.upsert_tickets([v2])  # staged before the write of v1 is recorded
    store.upsert_ticket_links(
        [
            {
                "ticket_id": 7,
                "record_id": "zd_ticket:1",
                "written_hash": "record-of-v1",
                "staged_hash": v1["content_hash"],
                "written_at": datetime.now(UTC) + timedelta(minutes=5),
            }
        ]
    )
    assert [t["content_hash"] for t in store.tickets_to_load()] == [v2["content_hash"]]
    store.upsert_ticket_links([{"ticket_id": 7, "staged_hash": v2["content_hash"]}])
    assert store.tickets_to_load() == []
    assert [t["ticket_id"] for t in store.tickets_to_load(full=True)] == [7]


def test_tickets_to_load_retries_failures_and_links_from_before_the_staged_hash(
    store: StagingStore,
) -> None:
    store.upsert_tickets([ticket_row(1), ticket_row(2), ticket_row(3)])
    store.upsert_ticket_links(
        [
            {"ticket_id": 1, "last_error": "invalid"},  # failed, never written
            {"ticket_id": 2, "record_id": "zd_ticket:2", "written_hash": "h"},  # older link
            {
                "ticket_id": 3,
                "record_id": "zd_ticket:3",
                "written_hash": "h",
                "staged_hash": ticket_row(3)["content_hash"],
            },
        ]
    )
    assert [t["ticket_id"] for t in store.tickets_to_load()] == [1, 2]


def test_quarantine_attempts_resolve_and_reopen(store: StagingStore) -> None:
    store.quarantine_add("organization", "V000001", "422 duplicate name", {"name": "Acme"})
    (item,) = store.quarantine_list("organization")
    assert (item.attempts, item.resolved_at, item.payload) == (1, None, {"name": "Acme"})
    time.sleep(0.01)
    store.quarantine_add("organization", "V000001", "422 still duplicate", {"name": "Acme 2"})
    store.quarantine_add("ticket_record", "42", "vendor missing")
    (item2,) = store.quarantine_list("organization")
    assert item2.attempts == 2
    assert item2.reason == "422 still duplicate"
    assert item2.payload == {"name": "Acme 2"}
    assert item2.first_seen == item.first_seen
    assert item2.last_seen > item.last_seen
    assert store.quarantine_count() == 2
    assert store.quarantine_count("organization") == 1

    assert store.quarantine_resolve("organization", ["V000001", "unknown"]) == 1
    assert store.quarantine_resolve("organization", ["V000001"]) == 0
    assert store.quarantine_list("organization") == []
    (resolved,) = store.quarantine_list("organization", include_resolved=True)
    assert resolved.resolved_at is not None
    assert resolved.resolved_at.tzinfo == UTC
    assert store.quarantine_count() == 1

    # Failing again after being resolved reopens the entry and keeps counting.
    store.quarantine_add("organization", "V000001", "500 again")
    (reopened,) = store.quarantine_list("organization")
    assert (reopened.attempts, reopened.resolved_at, reopened.reason) == (3, None, "500 again")
    assert [i.kind for i in store.quarantine_list()] == ["organization", "ticket_record"]


def test_quarantine_add_many(store: StagingStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "UPSERT_CHUNK_ROWS", 4)
    when = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
    store.quarantine_add_many(
        "ticket_record",
        [(str(n), f"vendor missing for {n}", {"ticket": n}) for n in range(10)]
        # Payloads that JSON cannot hold as such are kept as text, not refused.
        + [("10", "bad amount", {"amount": Decimal("12.50"), "at": when})],
    )
    assert store.quarantine_count("ticket_record") == 11
    items = {i.key: i for i in store.quarantine_list("ticket_record")}
    assert items["10"].payload == {"amount": "12.50", "at": str(when)}
    assert items["3"].payload == {"ticket": 3}
    # Again, with a key twice in the batch: the last entry wins, one more attempt each.
    store.quarantine_add_many(
        "ticket_record", [("3", "first", None), ("3", "second", None), ("4", "again", None)]
    )
    items = {i.key: i for i in store.quarantine_list("ticket_record")}
    assert (items["3"].attempts, items["3"].reason) == (2, "second")
    assert (items["4"].attempts, items["5"].attempts) == (2, 1)
    store.quarantine_add_many("ticket_record", [])  # nothing to do is fine
    assert store.quarantine_count() == 11


def test_cursor_set_get_overwrite(store: StagingStore) -> None:
    assert store.get_cursor("intacct.vendors.watermark") is None
    store.set_cursor("intacct.vendors.watermark", "2026-11-01T00:00:00Z")
    store.set_cursor("zendesk.tickets.2026-11-01", "cursor-a")
    store.set_cursor("zendesk.tickets.2026-11-02", "cursor-b")
    store.set_cursor("zendesk.tickets.2026-11-01", "cursor-c")
    assert store.get_cursor("intacct.vendors.watermark") == "2026-11-01T00:00:00Z"
    tickets = store.cursors("zendesk.tickets.")
    assert {k: v for k, (v, _) in tickets.items()} == {
        "zendesk.tickets.2026-11-01": "cursor-c",
        "zendesk.tickets.2026-11-02": "cursor-b",
    }
    assert all(at.tzinfo == UTC for _, at in tickets.values())
    assert len(store.cursors()) == 3


def test_timestamps_come_back_aware_utc(store: StagingStore) -> None:
    pacific = timezone(timedelta(hours=-8))
    local = datetime(2026, 11, 3, 9, 15, 30, 123456, tzinfo=pacific)
    store.upsert_vendors([vendor_row(1, when_modified=local)])
    (held,) = store.vendors()
    assert held["when_modified"] == local
    assert held["when_modified"].tzinfo == UTC
    assert held["when_modified"].hour == 17
    assert held["staged_at"].tzinfo == UTC
    assert abs(held["staged_at"] - datetime.now(UTC)) < timedelta(minutes=5)
    store.upsert_tickets([ticket_row(1)])
    (ticket,) = store.tickets()
    assert ticket["updated_at"].tzinfo == UTC


def test_naive_datetimes_are_rejected(store: StagingStore) -> None:
    row = vendor_row(1, when_modified=datetime(2026, 11, 3, 9, 15))
    row["when_modified"] = datetime(2026, 11, 3, 9, 15)  # the factory defaults otherwise
    with pytest.raises(StatementError, match="naive datetime"):
        store.upsert_vendors([row])
    assert store.vendors() == []
    with store.engine.connect() as conn:
        assert conn.execute(select(intacct_vendors.c.record_no)).all() == []


def test_content_hash_helper_is_stable() -> None:
    # The factories' hash must ignore key order, or "unchanged" tests would be meaningless.
    assert content_hash({"a": 1, "b": 2}) == content_hash({"b": 2, "a": 1})
