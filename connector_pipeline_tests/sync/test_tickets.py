"""Ticket staging, mapping and planning, without any I/O."""

import json
from datetime import UTC, datetime

import pytest

from connector_pipeline import settings
from connector_pipeline.sync.mapping import ConnectorMapping
from connector_pipeline.sync.tickets import (
    InvalidTicket,
    TicketRecordMapping,
    VendorRef,
    map_ticket,
    plan_ticket_records,
    stage_ticket,
)
from connector_pipeline_tests.support import fixtures_dir


def ticket(**over):
    base = {
        "id": 35436,
        "subject": "Invoice question",
        "status": "open",
        "priority": "high",
        "type": "question",
        "requester_id": 20978392,
        "organization_id": 509974,
        "created_at": "2026-11-02T10:00:00Z",
        "updated_at": "2026-11-03T11:00:00Z",
        "generated_timestamp": 1793000000,
    }
    base.update(over)
    return base


def test_stage_ticket_versions_by_generated_timestamp_then_updated_at():
    row = stage_ticket(ticket(), "poll")
    assert row["version"] == 1793000000 and row["organization_id"] == 509974
    assert row["updated_at"] == datetime(2026, 11, 3, 11, tzinfo=UTC)
    pushed = stage_ticket(ticket(generated_timestamp=None), "webhook")
    assert pushed["version"] == int(datetime(2026, 11, 3, 11, tzinfo=UTC).timestamp())
    # A system update that only moves generated_timestamp is not a content change.
    assert (
        stage_ticket(ticket(generated_timestamp=1793000999), "poll")["content_hash"]
        == row["content_hash"]
    )


@pytest.mark.parametrize(
    "over", [{"id": None}, {"status": ""}, {"updated_at": None, "generated_timestamp": None}]
)
def test_invalid_ticket_is_refused(over):
    with pytest.raises(InvalidTicket):
        stage_ticket(ticket(**over), "poll")


def test_every_recorded_export_ticket_stages():
    body = json.loads(
        (fixtures_dir("zendesk") / "tickets_incremental_cursor_end_of_stream.json").read_text()
    )
    rows = [stage_ticket(t, "poll") for t in body["tickets"]]
    assert len(rows) == len(body["tickets"]) > 0
    assert any(r["status"] == "deleted" for r in rows)


def test_map_ticket_fills_fields_and_relationship():
    record = map_ticket(ticket(), 42, TicketRecordMapping())
    assert record["name"] == "ZD-35436" and record["ticket_id"] == "35436"
    assert record["RVENDOR"] == "42" and record["subject"] == "Invoice question"
    assert record["ticket_type"] == "question"


def test_deleted_ticket_only_updates_status():
    record = map_ticket(ticket(status="deleted", subject="SCRUBBED"), 42, TicketRecordMapping())
    assert record["status"] == "deleted"
    assert "subject" not in record


def rows(*tickets):
    return [dict(stage_ticket(t, "poll")) for t in tickets]


def test_plan_matches_vendors_and_reports_unmatched():
    vendors = {
        509974: VendorRef("VENDOR", "V1", 11),
        777: VendorRef("CUSTOMER", "C1", 12),
        888: VendorRef("VENDOR", "V2", 13, deleted=True),
    }
    staged = rows(
        ticket(id=1),
        ticket(id=2, organization_id=None),
        ticket(id=3, organization_id=999),
        ticket(id=4, organization_id=777),
        ticket(id=5, organization_id=None, status="deleted"),
        ticket(id=6, organization_id=888),
    )
    plan = plan_ticket_records(staged, {}, vendors, TicketRecordMapping())
    assert [w.ticket_id for w in plan.writes] == [1]
    assert plan.writes[0].record["RVENDOR"] == "11" and plan.writes[0].record_id is None
    assert set(plan.unmatched) == {2, 3, 4, 6}
    assert "not linked" in plan.unmatched[3] and "vendors only" in plan.unmatched[4]
    assert "V2, which is no longer in Intacct" in plan.unmatched[6]
    assert list(plan.deleted_unwritten) == [5]


def test_plan_skips_what_was_written_with_the_same_hash():
    vendors = {509974: VendorRef("VENDOR", "V1", 11)}
    first = plan_ticket_records(rows(ticket(id=1)), {}, vendors, TicketRecordMapping())
    written = {1: {"record_id": "900", "written_hash": first.writes[0].hash}}
    again = plan_ticket_records(rows(ticket(id=1)), written, vendors, TicketRecordMapping())
    assert again.unchanged == 1 and not again.writes
    changed = plan_ticket_records(
        rows(ticket(id=1, status="solved")), written, vendors, TicketRecordMapping()
    )
    assert changed.writes[0].record_id == "900"


def test_default_mapping_fits_the_ticket_object_the_sandbox_defines():
    packaged = ConnectorMapping.from_yaml(settings.DEFAULT_MAPPING_FILE.read_text()).ticket_record
    assert packaged == TicketRecordMapping()  # the YAML documents the built-in defaults
    record = map_ticket(ticket(), 42, packaged)
    assert set(record) <= set(settings.INTACCT_TICKET_FIELDS)
