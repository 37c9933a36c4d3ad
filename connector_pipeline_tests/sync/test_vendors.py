"""Vendor -> organization mapping and planning, without any I/O."""

from datetime import UTC, datetime

import pytest

from connector_pipeline import settings
from connector_pipeline.domain import DELETED
from connector_pipeline.sync.mapping import ConnectorMapping
from connector_pipeline.sync.vendors import (
    InvalidSourceRecord,
    OrganizationMapping,
    changed_organizations,
    desired_organizations,
    disambiguate_names,
    drifted_fields,
    lookup_by_export,
    map_vendor,
    mass_deletion,
    needs_lookup,
    parse_source_objects,
    plan_organizations,
    reconcile_links,
    stage_row,
    vanished,
)

WHEN = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def record(**over):
    base = {
        "RECORDNO": "17",
        "VENDORID": "V00017",
        "NAME": "Acme Supplies",
        "STATUS": "active",
        "WHENMODIFIED": WHEN,
        "TERMNAME": "Net 30",
        "TOTALDUE": "1250.50",
        "ONHOLD": "false",
        "DISPLAYCONTACT": {
            "EMAIL1": "ap@Acme.example.com",
            "PHONE1": "+1 555 0100",
            "MAILADDRESS": {
                "ADDRESS1": "1 Main St",
                "CITY": "Springfield",
                "STATE": "IL",
                "ZIP": "62701",
            },
        },
    }
    base.update(over)
    return base


def staged(**over):
    return dict(stage_row("VENDOR", record(**over)))


@pytest.fixture
def mapping() -> OrganizationMapping:
    return ConnectorMapping.from_yaml(settings.DEFAULT_MAPPING_FILE.read_text()).organization


def test_stage_row_normalizes_and_hashes():
    row = stage_row("VENDOR", record())
    assert row["record_no"] == 17 and row["vendor_id"] == "V00017"
    assert row["status"] == "active" and row["when_modified"] == WHEN
    assert row["raw"]["WHENMODIFIED"] == WHEN.isoformat()  # JSON-safe
    assert row["content_hash"] == stage_row("VENDOR", record())["content_hash"]
    assert row["content_hash"] != stage_row("VENDOR", record(NAME="Other"))["content_hash"]


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"VENDORID": " "}, "VENDORID is empty"),
        ({"NAME": None}, "NAME is empty"),
        ({"RECORDNO": "x"}, "RECORDNO"),
        ({"WHENMODIFIED": "yesterday"}, "WHENMODIFIED"),
    ],
)
def test_malformed_vendor_is_refused_with_reason(over, message):
    with pytest.raises(InvalidSourceRecord, match=message):
        stage_row("VENDOR", record(**over))


def test_default_mapping_fills_every_organization_field(mapping):
    org = map_vendor(staged(), mapping)
    assert org.external_id == "V00017"
    p = org.payload
    assert p["name"] == "Acme Supplies"
    assert p["details"].splitlines() == [
        "1 Main St",
        "Springfield IL 62701",
        "+1 555 0100",
        "ap@Acme.example.com",
    ]
    assert "Payment terms: Net 30" in p["notes"] and "Total due: 1250.50" in p["notes"]
    assert p["tags"] == ["intacct-vendor"]
    assert p["domain_names"] == ["acme.example.com"]
    assert "TAXID" not in str(p)


def test_dotted_fields_are_read_flat_or_nested(mapping):
    flat = staged(DISPLAYCONTACT=None, **{"DISPLAYCONTACT.EMAIL1": "x@flat.example.org"})
    assert map_vendor(flat, mapping).payload["domain_names"] == ["flat.example.org"]


def test_inactive_vendor_gets_the_inactive_tag(mapping):
    org = map_vendor(staged(STATUS="inactive"), mapping)
    assert not org.active
    assert "intacct-inactive" in org.payload["tags"]


def test_deleted_vendor_gets_the_deleted_tag_instead(mapping):
    row = staged()
    live = map_vendor(row, mapping)
    gone = map_vendor({**row, "status": DELETED}, mapping)
    assert gone.deleted and not gone.active
    assert "intacct-deleted" in gone.payload["tags"]
    assert "intacct-inactive" not in gone.payload["tags"]
    assert gone.hash != live.hash  # so the organization gets updated


def test_a_reused_vendor_id_maps_to_the_record_still_in_intacct(mapping):
    old = {**staged(RECORDNO="5", NAME="Old Name"), "status": DELETED}
    new = staged(RECORDNO="9", NAME="New Name")
    newest_deleted = {**staged(RECORDNO="12", NAME="Gone Again"), "status": DELETED}
    for rows in ([old, new, newest_deleted], [newest_deleted, new, old]):
        [org] = desired_organizations(rows, mapping)
        assert (org.record_no, org.payload["name"], org.deleted) == (9, "New Name", False)
    [org] = desired_organizations([old, newest_deleted], mapping)
    assert org.record_no == 12 and org.deleted


def test_vanished_records_and_the_mass_deletion_guard():
    statuses = {1: "active", 2: "inactive", 3: DELETED, 4: "active"}
    assert vanished(statuses, present=[1, 99]) == [2, 4]  # 3 is already marked
    assert mass_deletion(missing=10, staged=12) is None  # a few are always allowed
    assert mass_deletion(missing=200, staged=1000) is None  # 20 %
    reason = mass_deletion(missing=201, staged=1000)
    assert reason and "201 of 1000" in reason and "allow_mass_deletion" in reason


def as_zendesk_returns(org, **over):
    """The organization as Zendesk would return it after it was written."""
    payload = org.payload
    return {
        "id": 901,
        "external_id": payload["external_id"],
        "name": payload["name"],
        "details": payload["details"] or None,
        "notes": payload["notes"] or None,
        "tags": list(reversed(payload["tags"])),
        "domain_names": payload["domain_names"],
        "organization_fields": dict(payload["organization_fields"]),
        "updated_at": "2026-11-01T00:00:00Z",
        **over,
    }


def test_drift_is_what_someone_changed_in_zendesk(mapping):
    org = map_vendor(staged(), mapping)
    assert drifted_fields(org, as_zendesk_returns(org)) == []
    # The collision form the connector writes itself is not drift.
    assert drifted_fields(org, as_zendesk_returns(org, name="Acme Supplies (V00017)")) == []
    edited = as_zendesk_returns(org, name="ACME!", tags=["vip"], notes="call Bob")
    assert drifted_fields(org, edited) == ["name", "notes", "tags"]


def test_reconcile_links_rewrites_only_drifted_and_missing(mapping):
    same, edited, gone, unlinked = (
        map_vendor(staged(RECORDNO=str(n), VENDORID=f"V{n}"), mapping) for n in (1, 2, 3, 4)
    )
    links = {
        o.external_id.lower(): {"organization_id": 900 + i, "written_hash": o.hash}
        for i, o in enumerate((same, edited, gone), start=1)
    }
    in_zendesk = {
        901: as_zendesk_returns(same, id=901),
        902: as_zendesk_returns(edited, id=902, details="moved"),
    }
    fresh, drift = reconcile_links([same, edited, gone, unlinked], links, in_zendesk)
    assert drift == {"V2": ["details"], "V3": ["missing"]}
    assert fresh["v1"] == links["v1"]
    assert fresh["v2"]["written_hash"] is None and fresh["v2"]["organization_id"] == 902
    assert fresh["v3"]["organization_id"] is None
    assert links["v2"]["written_hash"] == edited.hash  # the input is left alone
    plan = plan_organizations([same, edited, gone, unlinked], fresh, existing={})
    assert [p["external_id"] for p in plan.update] == ["V2"]
    assert sorted(p["external_id"] for p in plan.create) == ["V3", "V4"]


def test_a_vendor_change_not_yet_synced_is_not_drift(mapping):
    written = map_vendor(staged(RECORDNO="5", VENDORID="V5", NAME="Old Name"), mapping)
    changed = map_vendor(staged(RECORDNO="5", VENDORID="V5", NAME="New Name"), mapping)
    links = {"v5": {"organization_id": 905, "written_hash": written.hash}}
    # Zendesk holds what was written; only Intacct changed since.
    fresh, drift = reconcile_links([changed], links, {905: as_zendesk_returns(written, id=905)})
    assert drift == {}
    plan = plan_organizations([changed], fresh, existing={})
    assert [p["name"] for p in plan.update] == ["New Name"]  # updated all the same


def test_custom_mapping_file():
    m = ConnectorMapping.from_yaml(
        """
organization:
  external_id_prefix: "intacct-"
  name: "{NAME} [{ID}]"
  organization_fields: {vendor_terms: "{TERMNAME}"}
  inactive_tag: gone
"""
    ).organization
    org = map_vendor(staged(), m)
    assert org.external_id == "intacct-V00017"
    assert org.payload["name"] == "Acme Supplies [V00017]"
    assert org.payload["organization_fields"] == {"vendor_terms": "Net 30"}


def test_mapping_file_errors_are_clear():
    with pytest.raises(ValueError, match="unknown keys under organization: colour"):
        ConnectorMapping.from_yaml("organization: {colour: red}")
    with pytest.raises(ValueError, match="unknown sections"):
        ConnectorMapping.from_yaml("vendors: {}")


def test_source_objects():
    assert parse_source_objects("vendor, CUSTOMER,vendor") == ("VENDOR", "CUSTOMER")
    with pytest.raises(ValueError):
        parse_source_objects("BILL")


def test_name_collisions_are_disambiguated_deterministically(mapping):
    a = map_vendor(staged(RECORDNO="5", VENDORID="V5", NAME="Same Co"), mapping)
    b = map_vendor(staged(RECORDNO="9", VENDORID="V9", NAME=" same  co "), mapping)
    c = map_vendor(staged(RECORDNO="7", VENDORID="V7", NAME="Other"), mapping)
    # Names clash as Zendesk compares them, but each keeps its own text exactly.
    assert disambiguate_names([b, c, a]) == {"V9": " same  co  (V9)"}


def test_plan_skips_unchanged_updates_linked_and_looks_up_the_rest(mapping):
    same = map_vendor(staged(RECORDNO="1", VENDORID="V1", NAME="One"), mapping)
    changed = map_vendor(staged(RECORDNO="2", VENDORID="V2", NAME="Two"), mapping)
    fresh = map_vendor(staged(RECORDNO="3", VENDORID="V3", NAME="Three"), mapping)
    crashed = map_vendor(staged(RECORDNO="4", VENDORID="V4", NAME="Four"), mapping)
    links = {
        "v1": {"organization_id": 101, "written_hash": same.hash},
        "v2": {"organization_id": 102, "written_hash": "old"},
    }
    desired = [same, changed, fresh, crashed]
    assert [o.external_id for o in changed_organizations(desired, links)] == ["V2", "V3", "V4"]
    assert needs_lookup(changed_organizations(desired, links), links) == ["V3", "V4"]
    # V4 was created by a run that crashed before recording the link.
    plan = plan_organizations(desired, links, {"v4": {"id": 104, "external_id": "v4"}})
    assert plan.unchanged == 1
    assert [p["external_id"] for p in plan.create] == ["V3"]
    assert sorted((p["external_id"], p["id"]) for p in plan.update) == [("V2", 102), ("V4", 104)]


@pytest.mark.parametrize(
    ("candidates", "organizations", "export"),
    [
        (10_000, 3_000, True),  # first sync: 3 export pages against 100 show_many calls
        (10_000, 150_000, False),  # a huge account: 150 pages against 100 calls
        (250, 0, True),  # an empty account: one page against 3 calls
        (100, 0, False),  # one show_many call is never beaten
        (300, 2_500, False),  # 3 pages against 3 calls: show_many, no export budget spent
    ],
)
def test_lookup_by_export_picks_the_cheaper_lookup(
    candidates: int, organizations: int, export: bool
) -> None:
    assert lookup_by_export(candidates, organizations) is export


def test_external_ids_equal_but_for_case_are_a_collision_naming_both(mapping):
    from connector_pipeline.sync.vendors import external_id_collisions

    vendors = [
        staged(RECORDNO="15", VENDORID="vcase-15", NAME="Lower Case Ltd"),
        staged(RECORDNO="16", VENDORID="VCASE-15", NAME="Upper Case Ltd"),
        staged(RECORDNO="20", VENDORID="V20", NAME="Plain"),
    ]
    desired = {o.external_id for o in desired_organizations(vendors, mapping)}
    assert desired == {"vcase-15", "V20"}  # the older record keeps the organization
    [collision] = external_id_collisions(vendors, mapping)
    assert collision.external_id == "VCASE-15"
    assert "'VCASE-15' (RECORDNO 16)" in collision.reason
    assert "'vcase-15' (RECORDNO 15)" in collision.reason


def test_a_vendorid_deleted_and_used_again_is_no_collision(mapping):
    from connector_pipeline.domain import DELETED as VENDOR_DELETED
    from connector_pipeline.sync.vendors import external_id_collisions

    old = {**staged(RECORDNO="3", VENDORID="v-3", NAME="Old"), "status": VENDOR_DELETED}
    reused = staged(RECORDNO="9", VENDORID="V-3", NAME="New")
    again = staged(RECORDNO="12", VENDORID="v-3", NAME="Newest")
    assert external_id_collisions([old, reused], mapping) == []
    assert [o.record_no for o in desired_organizations([old, reused], mapping)] == [9]
    # The same VENDORID twice (one deleted) still picks the record in Intacct.
    assert [o.record_no for o in desired_organizations([old, again], mapping)] == [12]
