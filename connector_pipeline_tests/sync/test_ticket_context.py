"""The support context a ticket record carries for collections."""

from __future__ import annotations

from typing import Any

from connector_pipeline import settings
from connector_pipeline.sync.mapping import ConnectorMapping
from connector_pipeline.sync.tickets import (
    DEFAULT_RECORD_FIELDS,
    TicketRecordMapping,
    agent_url,
    derive_solved_at,
    lacks_context,
    map_ticket,
    stage_ticket,
    with_ledger_context,
)
from connector_pipeline.zendesk.sideloads import attach_sideloads

TICKET: dict[str, Any] = {
    "url": "https://acme.zendesk.com/api/v2/tickets/4025.json",
    "id": 4025,
    "subject": "Invoice 1181 paid twice?",
    "status": "solved",
    "priority": "high",
    "group_id": 360001,
    "requester_id": 77,
    "created_at": "2026-11-01T10:00:00Z",
    "updated_at": "2026-11-03T16:30:00Z",
    "satisfaction_rating": {"score": "good", "comment": "quick"},
}


def test_agent_url_is_the_agent_workspace_on_the_accounts_own_host() -> None:
    assert agent_url(TICKET) == "https://acme.zendesk.com/agent/tickets/4025"
    assert agent_url({"url": "http://127.0.0.1:8102/api/v2/tickets/9"}) == (
        "http://127.0.0.1:8102/agent/tickets/9"
    )
    assert agent_url({"id": 1}) == ""


def test_the_default_record_carries_url_priority_group_status_times_and_rating() -> None:
    record = map_ticket(TICKET, 1001, TicketRecordMapping())
    assert record["ticket_url"] == "https://acme.zendesk.com/agent/tickets/4025"
    assert record["priority"] == "high"
    assert record["status"] == "solved"
    assert record["assignee_group_id"] == "360001"
    assert record["zendesk_created_at"] == "2026-11-01T10:00:00Z"
    assert record["zendesk_updated_at"] == "2026-11-03T16:30:00Z"
    assert record["satisfaction_rating"] == "good"


def test_a_ticket_without_rating_or_group_leaves_them_empty() -> None:
    bare = {**TICKET, "satisfaction_rating": None, "group_id": None}
    record = map_ticket(bare, 1001, TicketRecordMapping())
    assert record["satisfaction_rating"] == "" and record["assignee_group_id"] == ""


def test_the_mapping_chooses_the_context() -> None:
    mapping = TicketRecordMapping.from_dict(
        {
            "fields": {
                "ticket_id": "{id}",
                "link": "{agent_url}",
                "csat": "{satisfaction_rating.score}",
            }
        }
    )
    record = map_ticket(TICKET, 1001, mapping)
    assert record == {
        "ticket_id": "4025",
        "link": "https://acme.zendesk.com/agent/tickets/4025",
        "csat": "good",
        "RVENDOR": "1001",
    }


# --- requester and group names (sideloaded), solved time (derived)

NAMED: dict[str, Any] = {
    **TICKET,
    "requester": {"name": "Ana Alvarez", "email": "ana@vendor.example"},
    "group": {"name": "Accounts Payable"},
}


def test_the_default_record_carries_requester_group_name_and_solved_time() -> None:
    staged = with_ledger_context(NAMED, None)
    record = map_ticket(staged, 1001, TicketRecordMapping())
    assert record["requester_name"] == "Ana Alvarez"
    assert record["requester_email"] == "ana@vendor.example"
    assert record["assignee_group"] == "Accounts Payable"
    assert record["solved_at"] == "2026-11-03T16:30:00Z"  # first seen solved: its updated_at


def test_the_default_mapping_file_names_the_new_fields() -> None:
    text = settings.DEFAULT_MAPPING_FILE.read_text(encoding="utf-8")
    fields = ConnectorMapping.from_yaml(text).ticket_record.fields
    assert dict(fields) == DEFAULT_RECORD_FIELDS  # the file and the built-in default agree
    assert fields["requester_name"] == "{requester.name}"
    assert fields["requester_email"] == "{requester.email}"
    assert fields["assignee_group"] == "{group.name}"
    assert fields["solved_at"] == "{solved_at}"


def test_attach_sideloads_keeps_only_what_the_record_shows() -> None:
    body: dict[str, list[dict[str, Any]]] = {
        "tickets": [
            {"id": 1, "requester_id": 77, "group_id": 360001},
            {"id": 2, "requester_id": 78, "group_id": None},
            {"id": 3, "requester_id": 99, "group_id": 5},  # not sideloaded: nothing invented
        ],
        "users": [
            {"id": 77, "name": "Ana", "email": "ana@x.example", "updated_at": "2026-01-01"},
            {"id": 78, "name": "Ben", "email": None},
        ],
        "groups": [{"id": 360001, "name": "AP", "updated_at": "2026-01-01"}],
    }
    one, two, three = attach_sideloads(body)
    assert one["requester"] == {"name": "Ana", "email": "ana@x.example"}
    assert one["group"] == {"name": "AP"}
    assert two["requester"] == {"name": "Ben", "email": None} and "group" not in two
    assert "requester" not in three and "group" not in three
    assert "requester" not in body["tickets"][0]  # the body is not changed


def test_an_event_without_names_keeps_those_staged_with_the_same_ids() -> None:
    previous = with_ledger_context(NAMED, None)
    event = {k: v for k, v in TICKET.items() if k not in ("requester", "group")}
    staged = with_ledger_context(event, previous)
    assert staged["requester"] == NAMED["requester"] and staged["group"] == NAMED["group"]
    assert not lacks_context(event, previous)
    # A changed requester or group carries nothing over: its name must be fetched.
    moved = {**event, "requester_id": 78, "group_id": 360002}
    assert "requester" not in with_ledger_context(moved, previous)
    assert "group" not in with_ledger_context(moved, previous)
    assert lacks_context(moved, previous)
    assert lacks_context(event, None)
    # A payload without the id (the trigger template has no group_id) keeps the name.
    trigger = {k: v for k, v in event.items() if k != "group_id"}
    assert with_ledger_context(trigger, previous)["group"] == NAMED["group"]
    # A ticket without group or requester needs no name for them.
    assert not lacks_context({**NAMED, "group_id": None, "group": None}, None)


def test_a_payload_with_names_replaces_the_staged_ones() -> None:
    previous = with_ledger_context(NAMED, None)
    renamed = {**NAMED, "requester": {"name": "Ana Alvarez-Brooks", "email": "a@x.example"}}
    assert with_ledger_context(renamed, previous)["requester"]["name"] == "Ana Alvarez-Brooks"


def _version(status: str, updated_at: str) -> dict[str, Any]:
    return {**NAMED, "status": status, "updated_at": updated_at}


def test_solved_at_is_the_first_solved_version_kept_until_reopened() -> None:
    open_ = with_ledger_context(_version("open", "2026-11-01T10:00:00Z"), None)
    assert "solved_at" not in open_
    solved = with_ledger_context(_version("solved", "2026-11-02T09:00:00Z"), open_)
    assert solved["solved_at"] == "2026-11-02T09:00:00Z"
    # Later versions (a satisfaction rating, closing) keep the first solve.
    rated = with_ledger_context(_version("solved", "2026-11-03T12:00:00Z"), solved)
    closed = with_ledger_context(_version("closed", "2026-11-30T00:00:00Z"), rated)
    assert rated["solved_at"] == closed["solved_at"] == "2026-11-02T09:00:00Z"
    # The same version staged again derives the same value (so the same content hash).
    assert with_ledger_context(_version("solved", "2026-11-02T09:00:00Z"), solved) == solved
    # Reopening clears it; solving again sets a new one.
    reopened = with_ledger_context(_version("open", "2026-11-04T08:00:00Z"), rated)
    assert "solved_at" not in reopened
    again = with_ledger_context(_version("solved", "2026-11-05T08:00:00Z"), reopened)
    assert again["solved_at"] == "2026-11-05T08:00:00Z"
    record = map_ticket(reopened, 1001, TicketRecordMapping())
    assert record["solved_at"] == ""


def test_a_deleted_ticket_keeps_its_solve_and_an_open_one_never_had_one() -> None:
    solved = with_ledger_context(_version("solved", "2026-11-02T09:00:00Z"), None)
    deleted = with_ledger_context(_version("deleted", "2026-11-09T00:00:00Z"), solved)
    assert deleted["solved_at"] == "2026-11-02T09:00:00Z"
    never = with_ledger_context(_version("deleted", "2026-11-09T00:00:00Z"), None)
    assert "solved_at" not in never
    assert derive_solved_at(_version("pending", "2026-11-02T09:00:00Z"), solved) is None


def test_a_payload_that_carries_its_own_solved_at_wins() -> None:
    ticket = {**_version("solved", "2026-11-03T12:00:00Z"), "solved_at": "2026-11-02T08:59:00Z"}
    assert with_ledger_context(ticket, None)["solved_at"] == "2026-11-02T08:59:00Z"


def test_the_derived_values_are_in_the_content_hash() -> None:
    bare = stage_ticket(with_ledger_context(TICKET, None), "poll")
    named = stage_ticket(with_ledger_context(NAMED, None), "poll")
    assert bare["content_hash"] != named["content_hash"]
    reopened = stage_ticket(with_ledger_context({**NAMED, "status": "open"}, None), "poll")
    assert reopened["raw"].get("solved_at") is None
    assert named["raw"]["solved_at"] == "2026-11-03T16:30:00Z"
