"""The sandbox gateway's company: object definitions, records and deterministic seed data.

Objects: VENDOR and CUSTOMER (standard, keyed by RECORDNO) and a Platform Services custom
object for Zendesk tickets (keyed by `id`, default integration name `zendesk_ticket`).

The ticket object's relationship field `RVENDOR` holds the related VENDOR's **RECORDNO**.
This is UNCONFIRMED for the real service (reference/intacct-api.md, section 5: "whether
a VENDOR relationship field expects the vendor's RECORDNO, VENDORID or name" is open). We
chose RECORDNO because Sage's own create example sets a standard-object relationship with
a record number (`<RTEST_OBJECT>10027</RTEST_OBJECT>`) and because RECORDNO is immutable
while VENDORID and NAME can be edited. Confirm with `lookup` on the real object before
going live; the sandbox rejects an unknown RECORDNO the way a relationship error would.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from connector_pipeline import settings
from connector_pipeline.sandbox.intacct_fields import (
    CUSTOMER_CATALOGUE,
    VENDOR_CATALOGUE,
    FieldSpec,
    top_level,
)

TICKET_INTEGER_FIELDS = frozenset(
    {"ticket_id", "requester_id", "organization_id", "assignee_group_id", "RVENDOR"}
)
NUMERIC_FIELDS = frozenset(
    {
        "RECORDNO",
        "id",
        "TOTALDUE",
        "CREDITLIMIT",
        "TOTALENTERED",
        "TOTALPAID",
        *TICKET_INTEGER_FIELDS,
    }
)
TIMESTAMP_FIELDS = frozenset({"WHENCREATED", "WHENMODIFIED"})


@dataclass(frozen=True)
class ObjectDef:
    name: str
    key_field: str
    id_field: str | None
    catalogue: tuple[FieldSpec, ...]
    custom: bool = False
    relationships: dict[str, str] = field(default_factory=dict)

    @property
    def record_tag(self) -> str:
        """Element name for records in query/read answers (custom objects keep their case)."""
        return self.name if self.custom else self.name.upper()

    @cached_property
    def fields(self) -> frozenset[str]:
        """Top-level field names a request may name (a nested group counts once)."""
        return frozenset(top_level(self.catalogue))

    @cached_property
    def _specs(self) -> dict[str, FieldSpec]:
        return {spec.name: spec for spec in self.catalogue}

    def lookup_fields(self) -> tuple[FieldSpec, ...]:
        return self.catalogue

    def datatype(self, name: str) -> str:
        spec = self._specs.get(name)
        return spec.datatype if spec is not None else "TEXT"

    @cached_property
    def all_fields(self) -> tuple[str, ...]:
        """What `*` (or no field list) answers with: every field, nested ones dotted, in
        the lookup's order; a field never set is an empty element, as Intacct shows it."""
        return tuple(spec.name for spec in self.catalogue)


def ticket_catalogue() -> tuple[FieldSpec, ...]:
    """The ticket custom object: system fields, then the integration's own fields."""
    integers = TICKET_INTEGER_FIELDS
    system = (
        FieldSpec("id", "INTEGER", readonly=True),
        FieldSpec("WHENCREATED", "TIMESTAMP", readonly=True),
        FieldSpec("WHENMODIFIED", "TIMESTAMP", readonly=True),
    )
    own = tuple(
        FieldSpec(name, "INTEGER" if name in integers else "TEXT", required=name == "name")
        for name in settings.INTACCT_TICKET_FIELDS
    )
    return system + own


def object_defs(
    ticket_object: str, *, with_ticket_object: bool = True, with_relationship: bool = True
) -> dict[str, ObjectDef]:
    """The company's objects. The switches let a scenario remove the ticket object or its
    VENDOR relationship field, as a company without Platform Services set up looks."""
    # Imported here: intacct_ledger builds its ObjectDefs from this module.
    from connector_pipeline.sandbox.intacct_ledger import ledger_object_defs

    defs = {
        "VENDOR": ObjectDef("VENDOR", "RECORDNO", "VENDORID", VENDOR_CATALOGUE),
        "CUSTOMER": ObjectDef("CUSTOMER", "RECORDNO", "CUSTOMERID", CUSTOMER_CATALOGUE),
        # Bills, invoices and their payments (sandbox/intacct_ledger.py).
        **ledger_object_defs(),
    }
    if with_ticket_object:
        vendor_field = settings.INTACCT_TICKET_VENDOR_FIELD
        catalogue = ticket_catalogue()
        relationships = {vendor_field: "VENDOR"}
        if not with_relationship:
            catalogue = tuple(spec for spec in catalogue if spec.name != vendor_field)
            relationships = {}
        defs[ticket_object] = ObjectDef(
            ticket_object, "id", "name", catalogue, custom=True, relationships=relationships
        )
    return defs


def now_utc() -> datetime:
    """Intacct timestamps have one-second precision."""
    return datetime.now(UTC).replace(microsecond=0)


# ----------------------------------------------------------------------------- seed data

_FIRST = (
    "Acme", "Northwind", "Blue Ridge", "Summit", "Harbor", "Cedar", "Granite", "Pioneer",
    "Silver Lake", "Redwood", "Evergreen", "Atlas", "Beacon", "Crescent", "Falcon", "Juniper",
    "Keystone", "Liberty", "Meridian", "Orchard", "Prairie", "Quarry", "Riverside", "Sterling",
)  # fmt: skip
_SECOND = (
    "Supply", "Logistics", "Office Products", "Industrial", "Consulting", "Electric",
    "Paper Co", "Freight", "Software", "Packaging", "Catering", "Facilities", "Print Shop",
    "Hardware", "Analytics", "Staffing",
)  # fmt: skip
_SUFFIX = ("Inc.", "LLC", "Ltd", "GmbH", "S.A.", "Corp.", "& Sons", "Group")
# Non-ASCII names exercise encoding end to end (Zendesk names, XML, the ledger).
_INTERNATIONAL = (
    "Müller & Söhne GmbH",
    "Café Łódź Sp. z o.o.",
    "Ørsted Façades A/S",
    "株式会社 山田商事",
    "Société Générale d'Équipement",
    "Αθηνά Προμήθειες ΑΕ",  # noqa: RUF001 - Greek on purpose
    "Ткани Москва ООО",  # noqa: RUF001 - Cyrillic on purpose
    "São Paulo Distribuição Ltda",
    "Zürich Präzision AG",
    "北京数据科技有限公司",
)
_CITIES = (
    ("San Jose", "CA", "95113", "United States"),
    ("Austin", "TX", "78701", "United States"),
    ("Portland", "OR", "97204", "United States"),
    ("Chicago", "IL", "60601", "United States"),
    ("Toronto", "ON", "M5H 2N2", "Canada"),
    ("München", "BY", "80331", "Germany"),
    ("London", "", "EC1A 1BB", "United Kingdom"),
)
_TERMS = ("Net 30", "Net 15", "Net 45", "Net 60", "Due on receipt")
_STREETS = ("Main St", "Market St", "Oak Ave", "Pine Rd", "Elm St", "Harbor Blvd")

# Every N-th vendor reuses an earlier vendor's exact NAME (different VENDORID), so the
# Zendesk name-collision path is exercised by ordinary seed data.
DUPLICATE_NAME_EVERY = 97
INACTIVE_EVERY = 13
ONHOLD_EVERY = 17
INTERNATIONAL_EVERY = 11
# Every N-th vendor has an empty WHENMODIFIED, as records migrated into Intacct can
# (estuary/connectors PR #4465 falls back to WHENCREATED for them).
UNSTAMPED_EVERY = 89
SEED_SPREAD_DAYS = 42


def _slug(name: str) -> str:
    ascii_part = "".join(c for c in name.lower() if c.isascii() and c.isalnum())
    return ascii_part[:24] or "vendor"


def _company_record(rng: random.Random, n: int, names: list[str], when: datetime) -> dict[str, Any]:
    if n % DUPLICATE_NAME_EVERY == 0 and names:
        name = names[rng.randrange(len(names))]
    elif n % INTERNATIONAL_EVERY == 0:
        name = f"{_INTERNATIONAL[(n // INTERNATIONAL_EVERY) % len(_INTERNATIONAL)]} {n}"
    else:
        name = f"{rng.choice(_FIRST)} {rng.choice(_SECOND)} {rng.choice(_SUFFIX)} {n}"
    names.append(name)
    city, state, zipcode, country = rng.choice(_CITIES)
    slug = _slug(name)
    created = when - timedelta(days=rng.randint(1, 700), seconds=rng.randint(0, 86_399))
    return {
        "NAME": name,
        "STATUS": "inactive" if n % INACTIVE_EVERY == 0 else "active",
        "DISPLAYCONTACT": {
            "PRINTAS": name,
            "CONTACTNAME": f"{name} (AP)",
            "COMPANYNAME": name,
            "EMAIL1": f"ap{n}@{slug}.example.com",
            "PHONE1": f"+1-555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
            "MAILADDRESS": {
                "ADDRESS1": f"{rng.randint(1, 9999)} {rng.choice(_STREETS)}",
                "ADDRESS2": "",
                "CITY": city,
                "STATE": state,
                "ZIP": zipcode,
                "COUNTRY": country,
            },
        },
        "TERMNAME": rng.choice(_TERMS),
        "TOTALDUE": f"{rng.randint(0, 250_000) / 100:.2f}",
        "ONHOLD": "true" if n % ONHOLD_EVERY == 0 else "false",
        "TAXID": f"{rng.randint(10, 99)}-{rng.randint(1_000_000, 9_999_999)}",
        "CURRENCY": "USD",
        "WHENCREATED": min(created, when),
        "WHENMODIFIED": None if n % UNSTAMPED_EVERY == 0 else when,
        "CREATEDBY": "1",
        "MODIFIEDBY": "1",
    }


def seed_companies(
    count: int, *, id_prefix: str, id_field: str, seed: int, now: datetime
) -> list[dict[str, Any]]:
    """`count` realistic records (without RECORDNO) in a deterministic order for `seed`."""
    rng = random.Random(f"{seed}:{id_prefix}")
    names: list[str] = []
    out = []
    for n in range(1, count + 1):
        offset = timedelta(seconds=rng.randint(60, SEED_SPREAD_DAYS * 86_400))
        record = _company_record(rng, n, names, now - offset)
        record[id_field] = f"{id_prefix}{n:05d}"
        out.append(record)
    return out


def vendor_defaults(vendor_id: str, name: str, when: datetime) -> dict[str, Any]:
    """The fields a scenario-created vendor gets unless the caller gives them."""
    return {
        "VENDORID": vendor_id,
        "NAME": name,
        "STATUS": "active",
        "DISPLAYCONTACT": {"PRINTAS": name, "EMAIL1": "", "PHONE1": "", "MAILADDRESS": {}},
        "TERMNAME": "Net 30",
        "TOTALDUE": "0.00",
        "ONHOLD": "false",
        "TAXID": "",
        "WHENCREATED": when,
        "WHENMODIFIED": when,
    }


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Nested merge used by update: nested objects change field by field."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def to_json(value: Any) -> Any:
    """A record as JSON for the scenario API (timestamps as ISO-8601 UTC)."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value
