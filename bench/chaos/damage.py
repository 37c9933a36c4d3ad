"""The verifier proves it can fail: known damage is done to a verified state through the
services' own APIs, and the verifier must report exactly that damage, nothing more and
nothing less.

The damage: one ticket record deleted in Intacct (lost), one copied (duplicate), one
retitled (wrong), one organization renamed in Zendesk (wrong), and one delivery with a bad
signature committed straight to the inbox (forged). Zendesk refuses a second organization
with a taken external id, so an organization duplicate cannot be made through its API; the
organization duplicate check is covered by the verifier's offline tests instead."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import httpx

from bench.chaos.verify import Finding, Verdict
from connector_pipeline import settings
from connector_pipeline.intacct import IntacctClient
from connector_pipeline.staging import InboxEvent
from connector_pipeline.zendesk.webhooks import (
    INVOCATION_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)

if TYPE_CHECKING:
    from bench.chaos.session import Session

TICKET_OBJECT = settings.INTACCT_TICKET_OBJECT
KEY_FIELD = settings.INTACCT_TICKET_KEY_FIELD
DAMAGED_SUBJECT = "Damaged subject"
DAMAGED_NAME = "Damaged organization name"


def _keys(verdict: Verdict) -> set[tuple[str, str, str]]:
    return {(f.kind, f.subject, f.key) for f in verdict.findings}


def inject_damage(session: Session) -> set[tuple[str, str, str]]:
    """Do the damage; return the findings it must produce, as (kind, subject, key)."""
    before = session.verify()
    flagged_tickets = {f.key for f in before.findings if f.subject == "ticket record"}
    flagged_vendors = {f.key for f in before.findings if f.subject == "organization"}
    truth = session.truth()
    intact = [r for r in truth.records if str(r.get("ticket_id")) not in flagged_tickets]
    if len(intact) < 3:
        raise RuntimeError("fewer than 3 intact ticket records to damage")
    lost, duplicated, retitled = intact[0], intact[1], intact[2]
    client = IntacctClient.from_env(session.sandboxes.env)
    try:
        client.delete(TICKET_OBJECT, [lost[KEY_FIELD]])
        copy = {
            k: v
            for k, v in duplicated.items()
            if k in settings.INTACCT_TICKET_FIELDS and v is not None
        }
        client.create(TICKET_OBJECT, [copy])
        client.update(TICKET_OBJECT, [{KEY_FIELD: retitled[KEY_FIELD], "subject": DAMAGED_SUBJECT}])
    finally:
        client.close()

    vendor_ids = {str(v["VENDORID"]).lower(): str(v["VENDORID"]) for v in truth.vendors}
    renamed = next(
        o
        for o in truth.organizations
        if str(o.get("external_id") or "").lower() in vendor_ids
        and vendor_ids[str(o["external_id"]).lower()] not in flagged_vendors
    )
    env = session.sandboxes.env
    auth = (f"{env[settings.ENV_ZENDESK_EMAIL]}/token", env[settings.ENV_ZENDESK_API_TOKEN])
    httpx.put(
        f"{session.sandboxes.zendesk_url}{settings.ZENDESK_API_PREFIX}/organizations/{renamed['id']}",
        json={"organization": {"name": DAMAGED_NAME}},
        auth=auth,
        timeout=30,
    ).raise_for_status()

    body = b'{"type":"zen:event-type:ticket.created","id":"' + uuid.uuid4().hex.encode() + b'"}'
    timestamp = "2026-01-01T00:00:00Z"
    forged = session.store.append_inbox(
        InboxEvent(
            body=body,
            headers={
                INVOCATION_ID_HEADER.lower(): uuid.uuid4().hex,
                TIMESTAMP_HEADER.lower(): timestamp,
                SIGNATURE_HEADER.lower(): sign("a-secret-nobody-configured", body, timestamp),
            },
            invocation_id=uuid.uuid4().hex,
            event_id=uuid.uuid4().hex,
            event_type="zen:event-type:ticket.created",
        )
    )
    return {
        ("lost", "ticket record", str(lost["ticket_id"])),
        ("duplicate", "ticket record", str(duplicated["ticket_id"])),
        ("wrong", "ticket record", str(retitled["ticket_id"])),
        ("wrong", "organization", vendor_ids[str(renamed["external_id"]).lower()]),
        ("forged", "inbox delivery", str(forged.id)),
    }


def prove_detection(session: Session) -> dict[str, Any]:
    """Damage the state and check the verifier reports exactly the damage done (beyond
    whatever it reported before)."""
    before = _keys(session.verify())
    expected = inject_damage(session)
    after = session.verify()
    reported = _keys(after) - before
    findings: list[Finding] = [f for f in after.findings if (f.kind, f.subject, f.key) in reported]
    return {
        "expected": sorted(map(list, expected)),
        "reported": sorted(map(list, reported)),
        "exact": reported == expected,
        "details": [f"{f.kind} {f.subject} {f.key}: {f.detail}" for f in sorted(findings)],
    }
