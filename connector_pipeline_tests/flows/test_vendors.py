"""The vendor read against an in-memory Intacct: new, changed, unchanged, quarantined,
deletions marked or withheld, the watermark, a dry run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connector_pipeline.domain import DELETED
from connector_pipeline.flows.vendors import (
    QUARANTINE_SOURCE,
    VendorRead,
    VendorReadOptions,
    VendorReadResult,
    load_position,
    watermark_cursor,
)
from connector_pipeline.staging import StagingStore
from connector_pipeline_tests.flows.fakes import FakeIntacct, Log

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def _read(intacct: FakeIntacct, store: StagingStore, **options: bool) -> VendorReadResult:
    return VendorRead(intacct, store, ["VENDOR"], VendorReadOptions(**options), Log()).run()


def _intacct(count: int) -> FakeIntacct:
    intacct = FakeIntacct(page_size=2)
    for n in range(1, count + 1):
        intacct.add_vendor(n, T0 + timedelta(minutes=n))
    return intacct


def test_new_then_unchanged_then_changed_with_the_watermark(store: StagingStore) -> None:
    intacct = _intacct(5)
    intacct.add_vendor(6, None)  # no WHENMODIFIED: read by a complete read only
    first = _read(intacct, store)
    meta = first.metadata()
    assert (meta["fetched"], meta["new"], meta["without_whenmodified"]) == (6, 6, 1)
    assert load_position(store.get_cursor(watermark_cursor("VENDOR"))) == (
        T0 + timedelta(minutes=5),
        5,
    )

    second = _read(intacct, store)  # the watermark's second again: unchanged
    assert (second.counts.new, second.counts.changed) == (0, 0)

    intacct.add_vendor(3, T0 + timedelta(hours=1), NAME="Renamed")
    third = _read(intacct, store)
    assert (third.counts.new, third.counts.changed) == (0, 1)
    assert third.watermarks == {"VENDOR": (T0 + timedelta(hours=1)).isoformat()}


def test_an_invalid_record_is_quarantined_then_resolved_once_fixed(store: StagingStore) -> None:
    intacct = _intacct(2)
    intacct.add_vendor(3, T0 + timedelta(minutes=3), NAME="")
    log = Log()
    result = VendorRead(intacct, store, ["VENDOR"], VendorReadOptions(), log).run()
    assert result.invalid == 1 and result.counts.new == 2
    [item] = store.quarantine_list(QUARANTINE_SOURCE)
    assert item.key == "VENDOR:3" and "NAME is empty" in item.reason
    assert log.lines["warning"] == [f"Intacct record VENDOR:3 quarantined: {item.reason}"]

    intacct.add_vendor(3, T0 + timedelta(minutes=30), NAME="Fixed")
    again = _read(intacct, store)
    assert again.counts.new == 1 and store.quarantine_list(QUARANTINE_SOURCE) == []


def test_a_complete_read_marks_vanished_records_deleted(store: StagingStore) -> None:
    intacct = _intacct(30)
    _read(intacct, store)
    del intacct.vendors[7]
    incremental = _read(intacct, store)
    assert incremental.deleted == 0  # only a complete read can tell
    full = _read(intacct, store, full_refresh=True)
    assert full.metadata()["deleted"] == 1
    assert store.vendor_statuses("VENDOR")[7] == DELETED


def test_a_mass_disappearance_is_withheld_until_allowed(store: StagingStore) -> None:
    intacct = _intacct(30)
    _read(intacct, store)
    for n in range(1, 21):
        del intacct.vendors[n]
    withheld = _read(intacct, store, full_refresh=True)
    assert (withheld.deleted, withheld.deletions_withheld) == (0, 20)
    assert [q.key for q in store.quarantine_list(QUARANTINE_SOURCE)] == ["deletions:VENDOR"]
    allowed = _read(intacct, store, full_refresh=True, allow_mass_deletion=True)
    assert allowed.deleted == 20 and store.quarantine_list(QUARANTINE_SOURCE) == []


def test_dry_run_previews_and_writes_nothing(store: StagingStore) -> None:
    intacct = _intacct(3)
    result = _read(intacct, store, dry_run=True)
    assert [p["id"] for p in result.preview] == ["V1", "V2", "V3"]
    assert result.metadata()["would_mark_deleted"] == 0
    assert store.vendors(["VENDOR"]) == [] and store.get_cursor(watermark_cursor("VENDOR")) is None
