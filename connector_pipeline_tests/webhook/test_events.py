"""Webhook payload parsing: both shapes, REST-shaped tickets, clear refusals."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector_pipeline.zendesk.events import (
    WebhookPayloadError,
    parse_timestamp,
    parse_webhook_payload,
)
from connector_pipeline_tests.support import fixtures_dir
from connector_pipeline_tests.webhook.deliveries import encode, ticket_event, trigger_payload


def recorded_user_deleted_payload() -> bytes:
    """The body of a real delivery, as kept by Zendesk's invocation-attempts API."""
    attempts = json.loads(
        (fixtures_dir("zendesk") / "webhook_invocation_attempts.json").read_text()
    )
    return str(attempts["attempts"][0]["request"]["payload"]).encode()


def test_recorded_non_ticket_event_is_understood_without_a_ticket() -> None:
    event = parse_webhook_payload(recorded_user_deleted_payload())
    assert event.event_type == "user.deleted"
    assert event.event_id == "b3695d61-2ef4-4e9c-97af-1f065c099564"
    assert event.ticket_id is None
    assert event.ticket == {}
    assert not event.complete
    assert event.account_id == 18525119
    assert event.occurred_at == datetime(2023, 9, 18, 23, 30, 3, tzinfo=UTC)
    assert event.raw["detail"]["id"] == "6164069643162"


def test_event_subscribed_ticket_is_normalised_to_rest_shape() -> None:
    event = parse_webhook_payload(encode(ticket_event(42, event_id="evt-1")))
    assert (event.event_id, event.event_type, event.ticket_id) == (
        "evt-1",
        "ticket.status_changed",
        42,
    )
    assert event.source == "event"
    assert event.complete
    t = event.ticket
    assert t["id"] == 42
    assert t["organization_id"] == 6164125400602
    assert t["requester_id"] == 6130869168922
    assert t["ticket_form_id"] == 6130830344474
    assert t["custom_status_id"] == 6130892426138
    assert (t["status"], t["priority"], t["type"]) == ("open", "high", "question")
    assert t["updated_at"] == "2024-05-02T10:11:12Z"
    assert t["external_id"] is None
    assert t["tags"] == ["billing", "vip"]
    assert t["subject"] == "Invoice question"
    assert t["via"] == {"channel": "web_service"}
    assert event.details == {"current": "OPEN", "previous": "NEW"}


def test_ticket_without_organization_is_complete_with_null_organization() -> None:
    event = parse_webhook_payload(encode(ticket_event(5, organization_id=None)))
    assert event.ticket["organization_id"] is None
    assert event.complete


def test_missing_organization_key_or_status_makes_it_incomplete() -> None:
    payload = ticket_event(5)
    del payload["detail"]["organization_id"]
    assert not parse_webhook_payload(encode(payload)).complete
    assert not parse_webhook_payload(encode(ticket_event(5, status="SOMETHING_NEW"))).complete


def test_ticket_id_falls_back_to_the_subject() -> None:
    payload = ticket_event(77)
    del payload["detail"]["id"]
    event = parse_webhook_payload(encode(payload))
    assert event.ticket_id == 77
    assert event.ticket["id"] == 77


@pytest.mark.parametrize("kind", ["ticket.soft_deleted", "ticket.permanently_deleted"])
def test_deletion_events_report_the_ticket_deleted(kind: str) -> None:
    event = parse_webhook_payload(encode(ticket_event(9, event_type=kind)))
    assert event.ticket["status"] == "deleted"
    assert event.is_deletion


def test_trigger_template_rendered_values_are_normalised() -> None:
    event = parse_webhook_payload(encode(trigger_payload(7)))
    assert event.source == "trigger"
    assert (event.event_type, event.ticket_id, event.event_id) == ("ticket.updated", 7, None)
    t = event.ticket
    assert (t["status"], t["priority"], t["type"]) == ("open", "normal", "incident")
    assert t["organization_id"] == 6164125400602
    assert t["assignee_id"] is None
    assert t["tags"] == ["billing", "vip"]
    # `{{ticket.created_at_with_timestamp}}` may come without seconds.
    assert t["created_at"] == "2024-05-01T09:00:00Z"
    assert event.occurred_at == datetime(2024, 5, 2, 10, 11, 12, tzinfo=UTC)
    # The template carries no subject: staged as it is, it would blank the record's
    # subject, so the drain fetches the ticket.
    assert "subject" not in t and not event.complete


@pytest.mark.parametrize(
    ("rendered", "expected"),
    [("On-hold", "hold"), ("Solved", "solved"), ("NEW", "new"), ("pending", "pending")],
)
def test_trigger_status_titles_map_to_api_values(rendered: str, expected: str) -> None:
    event = parse_webhook_payload(encode(trigger_payload(status=rendered)))
    assert event.ticket["status"] == expected


def test_trigger_edge_renderings() -> None:
    # No organization renders as an empty string; no type renders as "Ticket".
    event = parse_webhook_payload(encode(trigger_payload(organization_id="", type="Ticket")))
    assert event.ticket["organization_id"] is None
    assert event.ticket["type"] is None
    assert not event.complete  # no subject in the template
    # A localized status (placeholders follow the requester's language) is not guessed.
    localized = parse_webhook_payload(encode(trigger_payload(status="Offen")))
    assert "status" not in localized.ticket
    assert not localized.complete


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not UTF-8 JSON"),
        (b"\xff\xfe{}", "not UTF-8 JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"hello": "world"}', "unrecognised payload"),
        (b'{"type": "ticket.updated"}', "unrecognised payload"),
        (b'{"type": "zen:event-type:"}', "names no event"),
        (b'{"type": "zen:event-type:ticket.x", "detail": []}', '"detail"'),
        (b'{"ml_connector": 2, "ticket": {"id": "1"}}', "template version"),
        (b'{"ml_connector": 1}', '"ticket" object'),
        (b'{"ml_connector": 1, "ticket": {"status": "Open"}}', "ticket.id"),
    ],
)
def test_other_bodies_are_refused_with_a_clear_message(body: bytes, message: str) -> None:
    with pytest.raises(WebhookPayloadError, match=message) as info:
        parse_webhook_payload(body)
    assert isinstance(info.value, ValueError)


def test_timestamps_in_the_forms_zendesk_writes() -> None:
    assert parse_timestamp("2013-12-12T05:35Z") == datetime(2013, 12, 12, 5, 35, tzinfo=UTC)
    assert parse_timestamp("2013-12-12T05:35+0100") == datetime(2013, 12, 12, 4, 35, tzinfo=UTC)
    assert parse_timestamp("2023-09-18T23:37:07.123Z") == datetime(
        2023, 9, 18, 23, 37, 7, 123000, tzinfo=UTC
    )
    assert parse_timestamp("May 18, 2014") is None
    assert parse_timestamp("2023-13-45T99:99Z") is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
shaped = st.fixed_dictionaries(
    {"type": st.sampled_from(["zen:event-type:ticket.updated", "zen:event-type:user.x"])},
    optional={"detail": json_values, "id": json_values, "subject": json_values},
) | st.fixed_dictionaries(
    {"ml_connector": json_values},
    optional={"ticket": st.dictionaries(st.sampled_from(["id", "status", "tags"]), json_values)},
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, shaped))
def test_any_json_either_parses_or_is_refused_cleanly(value: object) -> None:
    try:
        event = parse_webhook_payload(json.dumps(value).encode())
    except WebhookPayloadError:
        return
    assert isinstance(event.event_type, str) and event.event_type
    assert event.ticket_id is None or isinstance(event.ticket_id, int)
    if event.complete:
        assert event.ticket["id"] == event.ticket_id


def test_impossible_rest_style_timestamp_is_not_staged() -> None:
    payload = ticket_event(3)
    payload["detail"]["updated_at"] = "2023-13-45T10:11:12Z"
    event = parse_webhook_payload(encode(payload))
    assert "updated_at" not in event.ticket
    assert not event.complete
