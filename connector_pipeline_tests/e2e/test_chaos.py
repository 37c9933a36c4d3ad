"""`make chaos`, reduced: overlapping Dagster runs (the sensor lane next to the scheduled
jobs, each a `dagster job execute` process) under injected faults, Intacct session
invalidations, duplicate / forged / stale webhooks, live traffic and SIGKILLs inside
writes; then the verifier, which must find the state exactly as the sandboxes' truth
calls for, and must report exactly the damage done to it afterwards.

The verifier's own rules are also checked offline, on hand-made states, including the
damage the sandboxes cannot be made to hold (a second organization with a taken external
id)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.chaos.damage import prove_detection
from bench.chaos.session import ChaosConfig, Session
from bench.chaos.verify import Finding, Truth, verify
from connector_pipeline.zendesk.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

SECRET = "verifier-test-secret"
RECEIVED = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

# Small and short, so the whole session stays under a minute on a shared machine; the
# full-size session is `make chaos`.
REDUCED = ChaosConfig(
    vendors=30,
    tickets=100,
    days=5,
    kills=2,
    min_s=12.0,
    max_s=90.0,
    session_invalidate_s=8.0,
    run_timeout_s=120.0,
    quiet_run_timeout_s=180.0,
)


def test_a_reduced_chaos_session_ends_exactly_in_the_expected_state(
    sqlite_url: str, tmp_path: Path
) -> None:
    result = Session(sqlite_url, "sqlite", REDUCED, tmp_path).run_then(prove_detection)

    findings = result.verdict["findings"]
    assert findings == [], findings
    assert result.problems == [], result.problems
    assert result.verdict["counts"] == {"duplicate": 0, "lost": 0, "wrong": 0, "forged": 0}
    assert result.verdict["checked"]["tickets_expecting_a_record"] > REDUCED.tickets // 2
    assert result.kills == REDUCED.kills, "the run was not killed inside writes as often as asked"
    assert sum(result.faults_injected["intacct"].values()) > 0
    assert sum(result.faults_injected["zendesk"].values()) > 0
    assert result.sessions["invalidations"] >= 1
    assert result.webhooks["forged_sent"] == result.webhooks["forged_refused"] > 0
    assert result.webhooks["stale_sent"] == result.webhooks["stale_refused"] > 0
    assert result.webhooks["duplicates_requested"] > 0
    assert all(q["status"] == "success" for q in result.quiet_pass), result.quiet_pass
    # The verifier proves it can fail: the damage done afterwards is reported, exactly.
    assert result.damage_check is not None
    assert result.damage_check["exact"], result.damage_check


# ---- the verifier's rules, offline


def _delivery(row_id: int, secret: str, signed_at: datetime) -> dict[str, Any]:
    body = b'{"type":"zen:event-type:ticket.created"}'
    timestamp = signed_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "id": row_id,
        "body": body,
        "received_at": RECEIVED,
        "headers": {
            TIMESTAMP_HEADER.lower(): timestamp,
            SIGNATURE_HEADER.lower(): sign(secret, body, timestamp),
        },
    }


def _truth() -> Truth:
    vendors: list[dict[str, Any]] = [
        {"RECORDNO": 1, "VENDORID": "V1", "NAME": "Acme", "STATUS": "active", "TOTALDUE": "1.00"},
        {"RECORDNO": 2, "VENDORID": "V2", "NAME": "Acme", "STATUS": "inactive"},
        {"RECORDNO": 3, "VENDORID": "V3", "NAME": "Bolt", "STATUS": "active"},
    ]
    organizations: list[dict[str, Any]] = [
        {"id": 10, "external_id": "v1", "name": "Acme", "tags": [], "notes": "Total due: 1.00"},
        {"id": 20, "external_id": "V2", "name": "Acme (V2)", "tags": ["intacct-inactive"]},
        {"id": 30, "external_id": "V3", "name": "Bolt", "tags": []},
        {"id": 40, "external_id": None, "name": "Walk-in", "tags": []},
    ]
    tickets: list[dict[str, Any]] = [
        {"id": 100, "organization_id": 10, "subject": "Invoice", "status": "open"},
        {"id": 101, "organization_id": 20, "subject": "Refund", "status": "solved"},
        {"id": 102, "organization_id": 40, "subject": "Unmatched", "status": "open"},
        {"id": 103, "organization_id": 30, "subject": "Gone", "status": "deleted"},
        {"id": 104, "organization_id": 30, "subject": "Late", "status": "new"},
    ]
    records: list[dict[str, Any]] = [
        {"id": "1", "ticket_id": "100", "subject": "Invoice", "status": "open", "RVENDOR": "1"},
        {"id": "2", "ticket_id": "101", "subject": "Refund", "status": "solved", "RVENDOR": "2"},
        {"id": "3", "ticket_id": "104", "subject": "Late", "status": "new", "RVENDOR": "3"},
    ]
    inbox = [_delivery(1, SECRET, RECEIVED - timedelta(seconds=2))]
    return Truth(vendors, organizations, tickets, records, inbox, [SECRET])


def _found(truth: Truth) -> set[tuple[str, str, str]]:
    return {(f.kind, f.subject, f.key) for f in verify(truth).findings}


def test_the_verifier_accepts_the_expected_state() -> None:
    verdict = verify(_truth())
    assert verdict.findings == []
    assert verdict.checked["tickets_expecting_a_record"] == 3


def test_the_verifier_reports_exactly_the_damage_done() -> None:
    truth = _truth()
    truth.organizations.append({"id": 50, "external_id": "V3", "name": "Bolt 2", "tags": []})
    truth.organizations[0]["notes"] = "Total due: 0.00"  # an update that never arrived
    truth.records.pop(0)  # ticket 100 lost
    truth.records[0]["subject"] = "Old subject"  # ticket 101 wrong
    truth.records.append(dict(truth.records[1]))  # ticket 104 twice
    truth.records.append({"id": "9", "ticket_id": "102", "subject": "x", "status": "open"})
    truth.inbox.append(_delivery(2, "some-other-secret", RECEIVED))
    truth.inbox.append(_delivery(3, SECRET, RECEIVED - timedelta(hours=1)))  # stale

    assert _found(truth) == {
        ("duplicate", "organization", "V3"),
        ("wrong", "organization", "V1"),
        ("lost", "ticket record", "100"),
        ("wrong", "ticket record", "101"),
        ("duplicate", "ticket record", "104"),
        ("wrong", "ticket record", "102"),
        ("forged", "inbox delivery", "2"),
        ("forged", "inbox delivery", "3"),
    }


def test_the_verifier_names_what_is_wrong() -> None:
    truth = _truth()
    truth.organizations[1]["tags"] = []
    truth.records[2]["RVENDOR"] = "1"
    details = {f.key: f.detail for f in verify(truth).findings}
    assert details == {
        "V2": "inactive tag missing",
        "104": "RVENDOR '1', expected 3",
    }
    assert Finding("lost", "ticket record", "1", "x") < Finding("wrong", "ticket record", "1", "x")
