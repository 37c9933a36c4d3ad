"""Intacct vendors (and customers) to Zendesk organizations: validation, mapping, planning.

Pure functions: records in, rows and plans out. Identity is the external id (DESIGN.md
decision 1), never the name; names are made unique deterministically (decision 2); a
mapped payload whose hash matches what was last written costs no Zendesk call (decision 3).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connector_pipeline import settings
from connector_pipeline.domain import DELETED, VendorRow, vendor_rank
from connector_pipeline.sync.hashing import content_hash, json_safe
from connector_pipeline.sync.templates import blank, field_value, render
from connector_pipeline.xml_chars import sanitize_xml_text

# Which Intacct field identifies a record of each supported source object.
ID_FIELD = {"VENDOR": "VENDORID", "CUSTOMER": "CUSTOMERID"}

# What is read from Intacct besides RECORDNO and the ID field; the same for vendors and
# customers. TAXID and bank fields are deliberately never selected, so they can't reach
# the ledger or Zendesk.
_COMMON_FIELDS = (
    "NAME",
    "STATUS",
    "WHENCREATED",
    "WHENMODIFIED",
    "TERMNAME",
    "TOTALDUE",
    "ONHOLD",
    # Standing (sync/standing.py) takes hold, credit limit and currency from the party's
    # own record: editing them is a change to the vendor, so they move its WHENMODIFIED.
    "CREDITLIMIT",
    "CURRENCY",
    "DISPLAYCONTACT.EMAIL1",
    "DISPLAYCONTACT.PHONE1",
    "DISPLAYCONTACT.MAILADDRESS.ADDRESS1",
    "DISPLAYCONTACT.MAILADDRESS.ADDRESS2",
    "DISPLAYCONTACT.MAILADDRESS.CITY",
    "DISPLAYCONTACT.MAILADDRESS.STATE",
    "DISPLAYCONTACT.MAILADDRESS.ZIP",
    "DISPLAYCONTACT.MAILADDRESS.COUNTRY",
)
SOURCE_FIELDS: dict[str, tuple[str, ...]] = {
    obj: ("RECORDNO", id_field, *_COMMON_FIELDS) for obj, id_field in ID_FIELD.items()
}

_EMAIL_DOMAIN = re.compile(r"@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\s*$")


class InvalidSourceRecord(ValueError):
    """An Intacct record that can't become an organization, with the reason why."""


def parse_source_objects(value: str) -> tuple[str, ...]:
    """`INTACCT_SOURCE_OBJECTS`: a comma-separated subset of VENDOR, CUSTOMER."""
    objects = tuple(dict.fromkeys(p.strip().upper() for p in value.split(",") if p.strip()))
    unknown = [o for o in objects if o not in ID_FIELD]
    if unknown or not objects:
        raise ValueError(f"INTACCT_SOURCE_OBJECTS must list VENDOR and/or CUSTOMER, got {value!r}")
    return objects


def record_no_of(record: Mapping[str, Any]) -> int | None:
    """The record's RECORDNO as a number, or None when it has none."""
    try:
        return int(str(record.get("RECORDNO")).strip())
    except ValueError:
        return None


def stage_row(source_object: str, record: Mapping[str, Any]) -> VendorRow:
    """Validate an Intacct record and turn it into a ledger row."""
    id_field = ID_FIELD[source_object]
    record_no = record_no_of(record)
    if record_no is None:
        raise InvalidSourceRecord(
            f"RECORDNO is missing or not a number: {record.get('RECORDNO')!r}"
        )
    vendor_id = str(record.get(id_field) or "").strip()
    if not vendor_id:
        raise InvalidSourceRecord(f"{id_field} is empty")
    name = str(record.get("NAME") or "").strip()
    if not name:
        raise InvalidSourceRecord(f"NAME is empty for {id_field} {vendor_id}")
    when_modified = record.get("WHENMODIFIED") or record.get("WHENCREATED")
    if when_modified is not None and not isinstance(when_modified, datetime):
        raise InvalidSourceRecord(f"WHENMODIFIED is not a timestamp: {when_modified!r}")
    raw = json_safe(dict(record))
    return VendorRow(
        source_object=source_object,
        record_no=record_no,
        vendor_id=vendor_id,
        name=name,
        status=str(record.get("STATUS") or "active").strip().lower(),
        when_modified=when_modified,
        raw=raw,
        content_hash=content_hash(raw),
    )


def is_active(status: str) -> bool:
    return status.strip().lower() in ("active", "t", "true")


@dataclass(frozen=True)
class OrganizationMapping:
    """Which Intacct fields fill which organization fields (see default_mapping.yaml)."""

    name: str = "{NAME}"
    external_id_prefix: str = ""
    details: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    domain_names_from_emails: tuple[str, ...] = ()
    organization_fields: Mapping[str, str] = field(default_factory=dict)
    inactive_tag: str = "intacct-inactive"
    deleted_tag: str = "intacct-deleted"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OrganizationMapping:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown keys under organization: {', '.join(unknown)}")
        lists = ("details", "notes", "tags", "domain_names_from_emails")
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key in lists:
                values[key] = tuple(str(v) for v in (value or ()))
            elif key == "organization_fields":
                values[key] = {str(k): str(v) for k, v in (value or {}).items()}
            else:
                values[key] = "" if value is None else str(value)
        if not values.get("name", "{NAME}").strip():
            raise ValueError("the mapping must say how to fill the organization name")
        return cls(**values)

    def external_id(self, vendor_id: str) -> str:
        return f"{self.external_id_prefix}{vendor_id}"


@dataclass(frozen=True)
class DesiredOrganization:
    """The organization a staged record should have in Zendesk."""

    external_id: str
    source_object: str
    vendor_id: str
    record_no: int
    active: bool
    payload: dict[str, Any]
    hash: str
    deleted: bool = False


def map_vendor(vendor: Mapping[str, Any], mapping: OrganizationMapping) -> DesiredOrganization:
    """A staged `intacct_vendors` row to the organization payload it maps to."""
    record = vendor["raw"]
    source_object = vendor["source_object"]
    extra = {
        "ID": vendor["vendor_id"],
        "SOURCE_OBJECT": source_object,
        "source_object": source_object.lower(),
    }
    active = is_active(vendor["status"])
    deleted = vendor["status"] == DELETED
    tags = [t for t in (render(t, record, extra) for t in mapping.tags) if not blank(t)]
    status_tag = mapping.deleted_tag if deleted else "" if active else mapping.inactive_tag
    if status_tag:
        tags.append(status_tag)
    domains = []
    for path in mapping.domain_names_from_emails:
        match = _EMAIL_DOMAIN.search(str(field_value(record, path) or ""))
        if match:
            domains.append(match.group(1).lower())
    external_id = mapping.external_id(vendor["vendor_id"])
    name = render(mapping.name, record, extra)
    payload: dict[str, Any] = {
        "external_id": external_id,
        "name": sanitize_xml_text(vendor["name"]) if blank(name) else name,
        "details": _lines(mapping.details, record, extra),
        "notes": _lines(mapping.notes, record, extra),
        "tags": sorted(set(tags)),
        "domain_names": sorted(set(domains)),
        "organization_fields": {
            key: render(t, record, extra) for key, t in mapping.organization_fields.items()
        },
    }
    return DesiredOrganization(
        external_id=external_id,
        source_object=source_object,
        vendor_id=vendor["vendor_id"],
        record_no=int(vendor["record_no"]),
        active=active,
        payload=payload,
        hash=content_hash(payload),
        deleted=deleted,
    )


def _lines(templates: Sequence[str], record: Mapping[str, Any], extra: Mapping[str, str]) -> str:
    """Rendered lines joined with newlines; lines with nothing in them are left out."""
    return "\n".join(x for x in (render(t, record, extra) for t in templates) if not blank(x))


def desired_organizations(
    vendors: Iterable[Mapping[str, Any]], mapping: OrganizationMapping
) -> list[DesiredOrganization]:
    """One organization per external id, mapped from the staged record that stands for it
    (`vendor_rank`: a VENDORID deleted and used again has two). Records whose external id
    collides case-insensitively with another record's are left out:
    `external_id_collisions` says which and why."""
    standing, _ = standing_records(vendors, mapping)
    return [map_vendor(v, mapping) for v in standing]


@dataclass(frozen=True)
class ExternalIdCollision:
    """A record left unwritten because Zendesk, which compares external ids
    case-insensitively, would take it for another record's organization."""

    external_id: str
    source_object: str
    vendor_id: str
    record_no: int
    kept_vendor_id: str
    kept_source_object: str
    kept_record_no: int

    @property
    def reason(self) -> str:
        return (
            f"external id collision: {self.source_object} {self.vendor_id!r} (RECORDNO "
            f"{self.record_no}) and {self.kept_source_object} {self.kept_vendor_id!r} "
            f"(RECORDNO {self.kept_record_no}) differ only by case, and Zendesk compares "
            f"external ids case-insensitively; {self.kept_vendor_id!r} keeps the "
            f"organization, {self.vendor_id!r} is not written until one of them is renamed "
            "or deleted in Intacct"
        )


def external_id_collisions(
    vendors: Iterable[Mapping[str, Any]], mapping: OrganizationMapping
) -> list[ExternalIdCollision]:
    """Active records left out by `desired_organizations`, each naming the record that
    keeps the organization (DESIGN.md decision 11: nothing is dropped silently)."""
    return standing_records(vendors, mapping)[1]


def standing_records(
    vendors: Iterable[Mapping[str, Any]], mapping: OrganizationMapping
) -> tuple[list[Mapping[str, Any]], list[ExternalIdCollision]]:
    # Within one exact external id, the best-ranked record stands (a VENDORID deleted and
    # used again). Different external ids equal but for case are different records:
    # the one created first (lowest RECORDNO) keeps the organization, and the others are
    # collisions, unless they are deleted in Intacct (nothing to write for them then).
    by_key: dict[str, dict[str, Mapping[str, Any]]] = {}
    for vendor in vendors:
        external_id = mapping.external_id(vendor["vendor_id"])
        exact = by_key.setdefault(external_id.lower(), {})
        held = exact.get(external_id)
        if held is None or _rank(vendor) > _rank(held):
            exact[external_id] = vendor
    standing: list[Mapping[str, Any]] = []
    collisions: list[ExternalIdCollision] = []
    for exact in by_key.values():
        candidates = sorted(exact.values(), key=lambda v: (not _rank(v)[0], int(v["record_no"])))
        kept, others = candidates[0], candidates[1:]
        standing.append(kept)
        for other in others:
            if other["status"] == DELETED or kept["status"] == DELETED:
                continue
            collisions.append(
                ExternalIdCollision(
                    external_id=mapping.external_id(other["vendor_id"]),
                    source_object=other["source_object"],
                    vendor_id=other["vendor_id"],
                    record_no=int(other["record_no"]),
                    kept_vendor_id=kept["vendor_id"],
                    kept_source_object=kept["source_object"],
                    kept_record_no=int(kept["record_no"]),
                )
            )
    return standing, collisions


def _rank(vendor: Mapping[str, Any]) -> tuple[bool, int]:
    return vendor_rank(vendor["status"], int(vendor["record_no"]))


def vanished(statuses: Mapping[int, str], present: Iterable[int]) -> list[int]:
    """Staged RECORDNOs (not yet marked deleted) that a complete read did not return."""
    seen = set(present)
    return sorted(n for n, status in statuses.items() if status != DELETED and n not in seen)


def mass_deletion(
    missing: int, staged: int, max_fraction: float = settings.VENDOR_DELETIONS_MAX_FRACTION
) -> str | None:
    """Why `missing` records out of `staged` are too many to mark deleted at once (a
    Web Services user that lost permissions or was moved to another entity would see
    most vendors vanish), or None when they are not."""
    if missing <= settings.VENDOR_DELETIONS_ALWAYS_ALLOWED or missing <= staged * max_fraction:
        return None
    return (
        f"{missing} of {staged} staged records are missing from a complete read of Intacct, "
        f"more than {max_fraction:.0%}: not marked deleted. Check the Web Services user's "
        "permissions and entity; if the deletions are real, run intacct_vendors with "
        "full_refresh and allow_mass_deletion"
    )


def collision_name(name: str, vendor_id: str) -> str:
    """Decision 2: the name an organization gets when another one already has its name."""
    return f"{name} ({vendor_id})"


def name_key(name: str) -> str:
    """How Zendesk compares names for uniqueness: trimmed; case-folded to be safe."""
    return " ".join(name.split()).casefold()


def disambiguate_names(desired: Sequence[DesiredOrganization]) -> dict[str, str]:
    """Names that clash within the desired set get "NAME (VENDORID)", except the oldest
    record (lowest RECORDNO), which keeps the plain name. Deterministic, so a rerun
    computes the same names. Returns external_id -> renamed name for the renamed ones."""
    groups: dict[str, list[DesiredOrganization]] = {}
    for org in desired:
        groups.setdefault(name_key(org.payload["name"]), []).append(org)
    renamed: dict[str, str] = {}
    for group in groups.values():
        if len(group) < 2:
            continue
        group.sort(key=lambda o: (o.source_object != "VENDOR", o.record_no))
        for org in group[1:]:
            renamed[org.external_id] = collision_name(org.payload["name"], org.vendor_id)
    return renamed


@dataclass
class OrganizationPlan:
    """What a sync run will do. `create` and `update` hold Zendesk payloads (updates carry
    `id`); `hashes` maps external id to the hash to record once written."""

    create: list[dict[str, Any]] = field(default_factory=list)
    update: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0
    renamed: dict[str, str] = field(default_factory=dict)
    desired: dict[str, DesiredOrganization] = field(default_factory=dict)


def changed_organizations(
    desired: Iterable[DesiredOrganization], links: Mapping[str, Mapping[str, Any]]
) -> list[DesiredOrganization]:
    """Those whose mapped payload differs from what was last written (or never was)."""
    out = []
    for org in desired:
        link = links.get(org.external_id.lower())
        if (
            link is None
            or link.get("organization_id") is None
            or link.get("written_hash") != org.hash
        ):
            out.append(org)
    return out


def drifted_fields(org: DesiredOrganization, actual: Mapping[str, Any]) -> list[str]:
    """The fields in which the organization Zendesk holds differs from what the ledger
    says was written (someone edited it in Zendesk). The name may also be the collision
    form "NAME (VENDORID)" the connector itself writes when a name is taken."""
    payload = org.payload
    out = []
    names = {payload["name"], collision_name(payload["name"], org.vendor_id)}
    if " ".join(str(actual.get("name") or "").split()) not in {" ".join(n.split()) for n in names}:
        out.append("name")
    for key in ("details", "notes"):
        if str(actual.get(key) or "").strip() != str(payload[key] or "").strip():
            out.append(key)
    for key in ("tags", "domain_names"):
        if {str(v).lower() for v in actual.get(key) or ()} != {v.lower() for v in payload[key]}:
            out.append(key)
    fields = actual.get("organization_fields") or {}
    if any(
        str(fields.get(k) or "") != str(v or "") for k, v in payload["organization_fields"].items()
    ):
        out.append("organization_fields")
    return out


def reconcile_links(
    desired: Iterable[DesiredOrganization],
    links: Mapping[str, Mapping[str, Any]],
    in_zendesk: Mapping[int, Mapping[str, Any]],
) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    """For a full reconciliation: the links with what Zendesk really holds taken into
    account, so only what differs is written again. A linked organization edited in
    Zendesk loses its written hash (it is updated); one gone from Zendesk loses its id
    (it is looked up, or created, again). Returns the links and, by external id, the
    fields that had drifted (["missing"] for a vanished organization): edits made in
    Zendesk only, never vendor changes waiting to be written."""
    out = {key: dict(link) for key, link in links.items()}
    drift: dict[str, list[str]] = {}
    for org in desired:
        key = org.external_id.lower()
        link = out.get(key)
        if link is None or link.get("organization_id") is None:
            continue
        actual = in_zendesk.get(int(link["organization_id"]))
        if actual is None:
            link["organization_id"] = None
            drift[org.external_id] = ["missing"]
        elif link.get("written_hash") == org.hash and (fields := drifted_fields(org, actual)):
            # Only an organization whose Intacct side has not changed since it was
            # written can have drifted: one with a vendor change not yet synced differs
            # from the desired payload because of Intacct, and is updated anyway.
            link["written_hash"] = None
            drift[org.external_id] = fields
    return out, drift


def needs_lookup(
    changed: Iterable[DesiredOrganization], links: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """External ids of changed records with no known organization: they must be looked
    up in Zendesk before anything is created (decision 4)."""
    return [
        o.external_id
        for o in changed
        if (links.get(o.external_id.lower()) or {}).get("organization_id") is None
    ]


def lookup_by_export(candidates: int, organizations: int) -> bool:
    """Whether one pass over the account's organizations (the incremental export, 1,000
    a page) finds what may already exist for `candidates` external ids in fewer calls
    than `show_many` by external id (100 a call). A first sync of 10,000 vendors in an
    account of 3,000 organizations: 3 pages against 100 calls; a run where 40 vendors
    are new: one `show_many` against every page of the account."""
    by_show_many = math.ceil(candidates / settings.ZENDESK_MAX_BATCH)
    by_export = max(1, math.ceil(organizations / settings.ZENDESK_EXPORT_PER_PAGE))
    return by_export < by_show_many


def plan_organizations(
    desired: Sequence[DesiredOrganization],
    links: Mapping[str, Mapping[str, Any]],
    existing: Mapping[str, Mapping[str, Any]],
    taken_names: Mapping[str, str] | None = None,
) -> OrganizationPlan:
    """Decide creates and updates.

    `taken_names` (name_key -> lower-case external id of the organization holding it,
    "" for none), when a pass over the account's organizations is at hand: a create whose
    name another organization holds is sent as "NAME (VENDORID)" at once (decision 2)
    rather than refused by Zendesk and sent again.

    `links` is the ledger's vendor_org_links keyed by lower-case external id. `existing`
    holds what Zendesk returned for `needs_lookup(...)`, keyed by lower-case external id.
    A linked record is updated by its organization id; an unlinked one is updated when
    Zendesk already has it (a crash after a write, or a manual creation) and created
    otherwise, so no run ever creates a second organization for one record.
    """
    renamed = disambiguate_names(desired)
    plan = OrganizationPlan(renamed=renamed, desired={o.external_id.lower(): o for o in desired})
    changed = changed_organizations(desired, links)
    plan.unchanged = len(desired) - len(changed)
    for org in changed:
        payload = dict(org.payload)
        if org.external_id in renamed:
            payload["name"] = renamed[org.external_id]
        key = org.external_id.lower()
        org_id = (links.get(key) or {}).get("organization_id") or (existing.get(key) or {}).get(
            "id"
        )
        if org_id is not None:
            plan.update.append({**payload, "id": int(org_id)})
            continue
        holder = (taken_names or {}).get(name_key(payload["name"]))
        if holder is not None and holder != key:
            payload["name"] = plan.renamed[org.external_id] = collision_name(
                org.payload["name"], org.vendor_id
            )
        plan.create.append(payload)
    return plan
