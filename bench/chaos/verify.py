"""The verifier: the state both systems hold, compared exactly with the state the
sandboxes' own truth calls for.

Expected state, derived from what the sandboxes hold (not from the ledger, and not through
the connector's mapping code, so a mistake the two share cannot hide):

- every Intacct vendor has exactly one Zendesk organization whose external id is its
  VENDORID (compared case-insensitively, as Zendesk does), named NAME (or "NAME (VENDORID)",
  the form the connector gives a name another organization already holds), tagged
  `intacct-inactive` exactly when the vendor is inactive, whose notes carry the vendor's
  current TOTALDUE and whose details carry its current phone (the fields live traffic
  changes);
- every ticket that is not deleted and whose organization stands for a vendor has exactly
  one Intacct record with its ticket id, its current subject and status, and the vendor's
  RECORDNO in the relationship field; no other ticket has a record;
- every delivery in the ledger's webhook inbox carries a valid signature from a configured
  secret, made within the receiver's tolerance of when it was received.

Each departure is a `Finding` of one kind: `duplicate`, `lost`, `wrong` or `forged`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from connector_pipeline import settings
from connector_pipeline.staging import StagingStore
from connector_pipeline.staging.schema import webhook_inbox
from connector_pipeline.zendesk.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookVerificationError,
    verify_with_any,
)

KINDS = ("duplicate", "lost", "wrong", "forged")
INACTIVE_TAG = "intacct-inactive"
TICKET_ID_FIELD = "ticket_id"
VENDOR_FIELD = settings.INTACCT_TICKET_VENDOR_FIELD


@dataclass(frozen=True, order=True)
class Finding:
    kind: str  # one of KINDS
    subject: str  # "organization", "ticket record" or "inbox delivery"
    key: str  # VENDORID, ticket id or inbox id
    detail: str


@dataclass
class Truth:
    """Everything the verifier reads, in one place, so it can be checked offline too."""

    vendors: list[dict[str, Any]]
    organizations: list[dict[str, Any]]
    tickets: list[dict[str, Any]]
    records: list[dict[str, Any]]
    inbox: list[dict[str, Any]]
    secrets: list[str]


@dataclass
class Verdict:
    findings: list[Finding] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str) -> int:
        return sum(1 for f in self.findings if f.kind == kind)

    @property
    def counts(self) -> dict[str, int]:
        return {kind: self.count(kind) for kind in KINDS}

    @property
    def clean(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "checked": self.checked,
            "findings": [asdict(f) for f in sorted(self.findings)],
        }


def _norm(text: Any) -> str:
    return " ".join(str(text or "").split())


def _phone(vendor: Mapping[str, Any]) -> str:
    return str((vendor.get("DISPLAYCONTACT") or {}).get("PHONE1") or "")


def check_organizations(
    vendors: Iterable[Mapping[str, Any]], organizations: Iterable[Mapping[str, Any]]
) -> tuple[list[Finding], dict[str, Mapping[str, Any]]]:
    """Findings, and the vendor each organization id stands for (by its external id)."""
    by_external: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for org in organizations:
        if org.get("external_id"):
            by_external[str(org["external_id"]).lower()].append(org)
    vendor_by_key = {str(v["VENDORID"]).lower(): v for v in vendors}
    findings: list[Finding] = []
    vendor_by_org: dict[str, Mapping[str, Any]] = {}
    for key, vendor in sorted(vendor_by_key.items()):
        vendor_id = str(vendor["VENDORID"])
        held = by_external.get(key, [])
        for org in held:
            vendor_by_org[str(org["id"])] = vendor
        if not held:
            findings.append(Finding("lost", "organization", vendor_id, "no organization"))
            continue
        if len(held) > 1:
            ids = ", ".join(str(o["id"]) for o in held)
            findings.append(
                Finding("duplicate", "organization", vendor_id, f"{len(held)} organizations: {ids}")
            )
            continue
        org = held[0]
        wrong = []
        name = _norm(vendor.get("NAME"))
        if _norm(org.get("name")) not in (name, f"{name} ({vendor_id})"):
            wrong.append(f"name {org.get('name')!r}, expected {name!r}")
        inactive = str(vendor.get("STATUS") or "active").lower() != "active"
        tagged = INACTIVE_TAG in {str(t).lower() for t in org.get("tags") or ()}
        if inactive != tagged:
            wrong.append(f"inactive tag {'missing' if inactive else 'present'}")
        total_due = f"Total due: {vendor.get('TOTALDUE')}"
        if vendor.get("TOTALDUE") is not None and total_due not in str(org.get("notes") or ""):
            wrong.append(f"notes lack {total_due!r}")
        phone = _phone(vendor)
        if phone and phone not in str(org.get("details") or ""):
            wrong.append(f"details lack phone {phone!r}")
        if wrong:
            findings.append(Finding("wrong", "organization", vendor_id, "; ".join(wrong)))
    for key, held in sorted(by_external.items()):
        if key not in vendor_by_key:
            for org in held:
                findings.append(
                    Finding(
                        "wrong",
                        "organization",
                        str(org.get("external_id")),
                        f"organization {org['id']} stands for no Intacct vendor",
                    )
                )
    return findings, vendor_by_org


def check_ticket_records(
    tickets: Iterable[Mapping[str, Any]],
    records: Iterable[Mapping[str, Any]],
    vendor_by_org: Mapping[str, Mapping[str, Any]],
) -> tuple[list[Finding], int]:
    """Findings, and how many tickets should have a record."""
    by_ticket: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        by_ticket[str(record.get(TICKET_ID_FIELD))].append(record)
    findings: list[Finding] = []
    expected: set[str] = set()
    for ticket in tickets:
        ticket_id = str(ticket["id"])
        vendor = vendor_by_org.get(str(ticket.get("organization_id")))
        if vendor is None or str(ticket.get("status")).lower() == "deleted":
            continue
        expected.add(ticket_id)
        held = by_ticket.get(ticket_id, [])
        if not held:
            findings.append(Finding("lost", "ticket record", ticket_id, "no Intacct record"))
            continue
        if len(held) > 1:
            findings.append(
                Finding("duplicate", "ticket record", ticket_id, f"{len(held)} Intacct records")
            )
            continue
        record, wrong = held[0], []
        if str(record.get("subject") or "") != str(ticket.get("subject") or ""):
            wrong.append(f"subject {record.get('subject')!r}, expected {ticket.get('subject')!r}")
        if str(record.get("status") or "") != str(ticket.get("status") or ""):
            wrong.append(f"status {record.get('status')!r}, expected {ticket.get('status')!r}")
        if str(record.get(VENDOR_FIELD) or "") != str(vendor["RECORDNO"]):
            wrong.append(
                f"{VENDOR_FIELD} {record.get(VENDOR_FIELD)!r}, expected {vendor['RECORDNO']!r}"
            )
        if wrong:
            findings.append(Finding("wrong", "ticket record", ticket_id, "; ".join(wrong)))
    for ticket_id, held in sorted(by_ticket.items()):
        if ticket_id not in expected:
            findings.append(
                Finding(
                    "wrong",
                    "ticket record",
                    ticket_id,
                    f"{len(held)} record(s) for a ticket that should have none",
                )
            )
    return findings, len(expected)


def check_inbox(inbox: Iterable[Mapping[str, Any]], secrets: list[str]) -> list[Finding]:
    """A delivery the receiver should have refused: bad signature, or signed too long
    before it was received."""
    findings = []
    for row in inbox:
        headers = {str(k).lower(): str(v) for k, v in (row.get("headers") or {}).items()}
        received: datetime = row["received_at"]
        try:
            verify_with_any(
                secrets,
                bytes(row["body"]),
                headers.get(TIMESTAMP_HEADER.lower(), ""),
                headers.get(SIGNATURE_HEADER.lower(), ""),
                tolerance_s=settings.WEBHOOK_SIGNATURE_TOLERANCE_S,
                now=received,
            )
        except WebhookVerificationError as exc:
            findings.append(Finding("forged", "inbox delivery", str(row["id"]), str(exc)))
    return findings


def verify(truth: Truth) -> Verdict:
    org_findings, vendor_by_org = check_organizations(truth.vendors, truth.organizations)
    record_findings, expected_records = check_ticket_records(
        truth.tickets, truth.records, vendor_by_org
    )
    inbox_findings = check_inbox(truth.inbox, truth.secrets)
    return Verdict(
        findings=[*org_findings, *record_findings, *inbox_findings],
        checked={
            "vendors": len(truth.vendors),
            "organizations": len(truth.organizations),
            "tickets": len(truth.tickets),
            "tickets_expecting_a_record": expected_records,
            "ticket_records": len(truth.records),
            "inbox_deliveries": len(truth.inbox),
        },
    )


def inbox_rows(store: StagingStore) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                webhook_inbox.c.id,
                webhook_inbox.c.headers,
                webhook_inbox.c.body,
                webhook_inbox.c.received_at,
            ).order_by(webhook_inbox.c.id)
        )
        return [dict(r._mapping) for r in rows]


def summarize(findings: Iterable[Finding]) -> dict[str, int]:
    return dict(Counter(f.kind for f in findings))
