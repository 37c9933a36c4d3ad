"""The support context a ticket record carries for collections."""

from __future__ import annotations

from typing import Any

from connector_pipeline.sync.tickets import TicketRecordMapping, agent_url, map_ticket

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
