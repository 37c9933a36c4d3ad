"""The organization sync against an in-memory Zendesk: created, unchanged, updated, name
collisions, failures, an organization deleted in Zendesk, and a lost create answer."""

from __future__ import annotations

import pytest

from connector_pipeline.flows.organizations import (
    QUARANTINE_ORGANIZATION,
    OrganizationSync,
    OrganizationSyncOptions,
    OrganizationSyncResult,
)
from connector_pipeline.staging import StagingStore
from connector_pipeline.sync.vendors import OrganizationMapping
from connector_pipeline.zendesk import ZendeskServerError
from connector_pipeline_tests.flows.fakes import FakeZendesk, Log
from connector_pipeline_tests.staging.factories import vendor_row


def _sync(
    zendesk: FakeZendesk, store: StagingStore, *, dry_run: bool = False, full: bool = False
) -> OrganizationSyncResult:
    options = OrganizationSyncOptions(dry_run=dry_run, full_refresh=full)
    return OrganizationSync(zendesk, store, OrganizationMapping(), ["VENDOR"], options, Log()).run()


def _linked(store: StagingStore) -> dict[str, int | None]:
    return {k: link["organization_id"] for k, link in store.vendor_links().items()}


def test_created_then_unchanged_then_updated(store: StagingStore) -> None:
    store.upsert_vendors([vendor_row(n) for n in (1, 2, 3)])
    zendesk = FakeZendesk()
    first = _sync(zendesk, store)
    assert first.metadata()["created"] == 3 and first.metadata()["failed"] == 0
    assert sorted(_linked(store)) == ["v000001", "v000002", "v000003"]
    assert all(_linked(store).values())

    second = _sync(zendesk, store)
    assert (second.metadata()["created"], second.metadata()["updated"]) == (0, 0)
    assert second.unchanged == 3 and second.api_calls == 0

    store.upsert_vendors([vendor_row(2, name="Renamed Supplies")])
    third = _sync(zendesk, store)
    assert (third.metadata()["created"], third.metadata()["updated"]) == (0, 1)
    assert any(o["name"] == "Renamed Supplies" for o in zendesk.organizations.values())
    assert len(zendesk.organizations) == 3


def test_a_name_taken_in_zendesk_is_written_as_name_and_vendor_id(store: StagingStore) -> None:
    zendesk = FakeZendesk()
    zendesk.organizations[1] = {"id": 1, "name": "Acme Supplies 1", "external_id": None}
    store.upsert_vendors([vendor_row(1)])
    result = _sync(zendesk, store)
    assert result.metadata()["created"] == 1 and result.name_collisions == 1
    names = sorted(o["name"] for o in zendesk.organizations.values())
    assert names == ["Acme Supplies 1", "Acme Supplies 1 (V000001)"]


def test_an_existing_organization_is_linked_and_updated_not_created(store: StagingStore) -> None:
    zendesk = FakeZendesk()
    zendesk.organizations[5] = {"id": 5, "name": "Old", "external_id": "v000001"}
    store.upsert_vendors([vendor_row(1)])
    result = _sync(zendesk, store)
    assert (result.metadata()["created"], result.metadata()["updated"]) == (0, 1)
    assert _linked(store) == {"v000001": 5} and len(zendesk.organizations) == 1


def test_a_lost_create_answer_is_found_by_external_id_on_the_retry(store: StagingStore) -> None:
    store.upsert_vendors([vendor_row(n) for n in (1, 2)])
    zendesk = FakeZendesk(lose_next_create=True)
    with pytest.raises(ZendeskServerError):
        _sync(zendesk, store)
    assert not any(_linked(store).values())  # written, but the answer never came
    retry = _sync(zendesk, store)
    assert (retry.metadata()["created"], retry.metadata()["updated"]) == (0, 2)
    assert len(zendesk.organizations) == 2 and all(_linked(store).values())


def test_deleted_in_zendesk_fails_once_then_is_created_again(store: StagingStore) -> None:
    store.upsert_vendors([vendor_row(1)])
    zendesk = FakeZendesk()
    _sync(zendesk, store)
    zendesk.organizations.clear()
    store.upsert_vendors([vendor_row(1, name="Changed")])
    failed = _sync(zendesk, store)
    assert failed.metadata()["failed"] == 1
    [item] = store.quarantine_list(QUARANTINE_ORGANIZATION)
    assert item.key == "V000001" and item.reason == "Not found"
    assert _linked(store) == {"v000001": None}  # not_found: look it up again next time
    again = _sync(zendesk, store)
    assert again.metadata()["created"] == 1 and again.metadata()["failed"] == 0
    assert store.quarantine_list(QUARANTINE_ORGANIZATION) == []


def test_full_refresh_rewrites_only_what_was_edited_in_zendesk(store: StagingStore) -> None:
    store.upsert_vendors([vendor_row(n) for n in (1, 2)])
    zendesk = FakeZendesk()
    _sync(zendesk, store)
    edited = next(iter(zendesk.organizations.values()))
    edited["notes"] = "typed by an agent"
    result = _sync(zendesk, store, full=True)
    assert result.drifted == 1 and result.metadata()["updated"] == 1


def test_dry_run_writes_nothing(store: StagingStore) -> None:
    store.upsert_vendors([vendor_row(n) for n in (1, 2)])
    zendesk = FakeZendesk()
    result = _sync(zendesk, store, dry_run=True)
    assert result.metadata() == {
        "would_create": 2,
        "would_update": 0,
        "unchanged": 0,
        "drifted": 0,
        "external_id_collisions": 0,
        "lookup": "show_many",
        "api_calls": 1,
        "dry_run": True,
    }
    assert zendesk.organizations == {} and store.vendor_links() == {}


def _many(store: StagingStore, zendesk: FakeZendesk, vendors: int, preexisting: int) -> None:
    """`vendors` vendors, the first `preexisting` already with a hand-made organization."""
    store.upsert_vendors([vendor_row(n) for n in range(1, vendors + 1)])
    for n in range(1, preexisting + 1):
        zendesk.organizations[n] = {"id": n, "name": f"Hand {n}", "external_id": f"V{n:06d}"}


def test_a_first_sync_finds_what_exists_in_one_pass_not_one_call_per_100(
    store: StagingStore,
) -> None:
    zendesk = FakeZendesk(export_page_size=20)
    _many(store, zendesk, vendors=450, preexisting=30)
    result = _sync(zendesk, store)
    assert result.lookup == "export"
    # count + 2 pages of the export, against 5 show_many calls for 450 external ids.
    assert (zendesk.calls.count("count"), zendesk.calls.count("export_organizations")) == (1, 2)
    assert zendesk.calls.count("show_many") == 0
    assert (result.metadata()["created"], result.metadata()["updated"]) == (420, 30)
    assert len(zendesk.organizations) == 450 and all(_linked(store).values())


def test_few_lookups_use_show_many(store: StagingStore) -> None:
    zendesk = FakeZendesk()
    _many(store, zendesk, vendors=150, preexisting=3)
    result = _sync(zendesk, store)
    assert result.lookup == "show_many" and "count" not in zendesk.calls
    assert zendesk.calls.count("show_many") == 1  # the fake answers any number at once
    assert len(zendesk.organizations) == 150


def test_a_pass_right_after_a_lost_create_also_asks_show_many(store: StagingStore) -> None:
    """The export leaves out the last minute: organizations a crashed run created just
    before are not in the pass, so what the pass did not find is looked up by external
    id, and nothing is created twice."""
    zendesk = FakeZendesk(lose_next_create=True)
    _many(store, zendesk, vendors=450, preexisting=30)
    with pytest.raises(ZendeskServerError):
        _sync(zendesk, store)
    assert len(zendesk.organizations) == 450
    zendesk.export_blind = {i for i in zendesk.organizations if i > 30}
    retry = _sync(zendesk, store)
    assert retry.lookup == "export" and zendesk.calls.count("show_many") == 1
    assert (retry.metadata()["created"], retry.metadata()["updated"]) == (0, 450)
    assert len(zendesk.organizations) == 450 and all(_linked(store).values())


def test_the_pass_alone_when_our_creates_are_long_past(store: StagingStore) -> None:
    zendesk = FakeZendesk()
    _many(store, zendesk, vendors=450, preexisting=30)
    store.set_cursor("zendesk_organizations/creates_started", "0.0")
    result = _sync(zendesk, store)
    assert result.lookup == "export" and "show_many" not in zendesk.calls
    assert len(zendesk.organizations) == 450


def test_the_pass_tells_which_names_are_taken_so_creates_need_no_second_call(
    store: StagingStore,
) -> None:
    zendesk = FakeZendesk()
    _many(store, zendesk, vendors=450, preexisting=0)
    # A hand-made organization holds vendor 7's name under no external id.
    zendesk.organizations[1] = {"id": 1, "name": "Acme Supplies 7", "external_id": None}
    result = _sync(zendesk, store)
    assert result.lookup == "export" and result.name_collisions == 1
    assert zendesk.calls.count("create_many") == 1  # no second call for the renamed one
    assert any(o["name"] == "Acme Supplies 7 (V000007)" for o in zendesk.organizations.values())
