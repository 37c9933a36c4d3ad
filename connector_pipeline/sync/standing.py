"""Financial standing of a vendor (AP) or customer (AR): what it owes or is owed, how much
of it is overdue and for how long, and a band (good / watch / hold) for Zendesk business
rules. Pure functions: staged bills, payments and the party's own record in, standing and
the organization fields that carry it out.

Overdue is computed from due dates and an injected "today", never read from Intacct, so it
moves with the calendar at no API cost.

Fields and states (reference/intacct-api.md; lookup_apbill_data_element_live.xml):
APBILL has STATE (valid values Draft, Partially Approved, Submitted, Declined, No Value,
Posted, Paid, Partially Paid, Selected, Reversed, Reversal, Analyzing), WHENDUE (DATE),
TOTALDUE (CURRENCY), CURRENCY, VENDORID and WHENMODIFIED (TIMESTAMP). ARINVOICE, APPYMT and
ARPYMT have no recording: that ARINVOICE mirrors APBILL with CUSTOMERID, and that the
payments carry VENDORID / CUSTOMERID, WHENPAID, TOTALENTERED and STATE, is UNCONFIRMED.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connector_pipeline.domain import OpenItemRow, PaymentRow
from connector_pipeline.sync.hashing import content_hash

GOOD, WATCH, HOLD = "good", "watch", "hold"
BANDS = (GOOD, WATCH, HOLD)

# Which documents and payments make up each party's standing.
DOCUMENT_OBJECT = {"VENDOR": "APBILL", "CUSTOMER": "ARINVOICE"}
PAYMENT_OBJECT = {"VENDOR": "APPYMT", "CUSTOMER": "ARPYMT"}
PARTY_FIELD = {
    "APBILL": "VENDORID",
    "APPYMT": "VENDORID",
    "ARINVOICE": "CUSTOMERID",
    "ARPYMT": "CUSTOMERID",
}


def standing_objects(parties: Iterable[str]) -> tuple[str, ...]:
    """The Intacct objects the standing of `parties` (VENDOR / CUSTOMER) is read from."""
    return tuple(obj for p in parties for obj in (DOCUMENT_OBJECT[p], PAYMENT_OBJECT[p]))


# Short ledger prefix per party, used in band tags: ap-hold, ar-watch.
LEDGER = {"VENDOR": "ap", "CUSTOMER": "ar"}

DOCUMENT_FIELDS = ("RECORDNO", "STATE", "WHENDUE", "TOTALDUE", "CURRENCY", "WHENMODIFIED")
PAYMENT_FIELDS = ("RECORDNO", "STATE", "WHENPAID", "TOTALENTERED", "CURRENCY", "WHENMODIFIED")

# Documents that still count against the party: approved and posted, not (fully) paid.
# Draft / Submitted / Partially Approved / Analyzing are not payable yet; Declined, Paid,
# Reversed and Reversal owe nothing. ARINVOICE's states are assumed to be the same names
# (UNCONFIRMED).
OPEN_STATES = frozenset({"Posted", "Partially Paid", "Selected"})
# Payments that did not happen: a voided or reversed payment is no last payment.
# UNCONFIRMED: APPYMT's STATE values (no lookup recording); these are APBILL's names.
VOID_PAYMENT_STATES = frozenset({"Voided", "Reversed", "Reversal", "Declined", "Draft"})

# What each measure is, as a Zendesk organization field type.
MEASURE_TYPES = {
    "band": "dropdown",
    "total_due": "decimal",
    "overdue_amount": "decimal",
    "oldest_days_overdue": "integer",
    "open_count": "integer",
    "on_hold": "checkbox",
    "credit_limit": "decimal",
    "last_payment_date": "date",
    "currency": "text",
}
MEASURE_TITLES = {
    "band": "Intacct standing",
    "total_due": "Intacct total due",
    "overdue_amount": "Intacct overdue amount",
    "oldest_days_overdue": "Intacct days overdue (oldest)",
    "open_count": "Intacct open bills / invoices",
    "on_hold": "Intacct on hold",
    "credit_limit": "Intacct credit limit",
    "last_payment_date": "Intacct last payment",
    "currency": "Intacct currency",
}


class InvalidStandingRecord(ValueError):
    """A bill, invoice or payment that can't be staged, with the reason why."""


# ----------------------------------------------------------------------------- parsing


def parse_amount(value: Any, what: str) -> Decimal:
    """An Intacct decimal (no thousands separators, per the reference); empty is zero."""
    if value is None or str(value).strip() == "":
        return Decimal("0")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidStandingRecord(f"{what} is not a number: {value!r}") from None
    if not amount.is_finite():
        raise InvalidStandingRecord(f"{what} is not a number: {value!r}")
    return amount


def parse_date(value: Any, what: str) -> date | None:
    """An Intacct date: `mm/dd/yyyy` (the Web Services user is set to /mdY, DESIGN.md
    decision 9) or ISO; empty is None."""
    if value is None or str(value).strip() == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        return datetime.strptime(text, "%m/%d/%Y").date()
    except ValueError:
        pass
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise InvalidStandingRecord(f"{what} is not a date: {value!r}") from None


def _record_no(record: Mapping[str, Any]) -> int:
    try:
        return int(str(record.get("RECORDNO")).strip())
    except ValueError:
        raise InvalidStandingRecord(
            f"RECORDNO is missing or not a number: {record.get('RECORDNO')!r}"
        ) from None


def _party(source_object: str, record: Mapping[str, Any]) -> str:
    name = PARTY_FIELD[source_object]
    party = str(record.get(name) or "").strip()
    if not party:
        raise InvalidStandingRecord(f"{name} is empty")
    return party


def _when_modified(record: Mapping[str, Any]) -> datetime | None:
    value = record.get("WHENMODIFIED")
    if value is not None and not isinstance(value, datetime):
        raise InvalidStandingRecord(f"WHENMODIFIED is not a timestamp: {value!r}")
    return value


def document_row(source_object: str, record: Mapping[str, Any]) -> OpenItemRow:
    """Validate an APBILL / ARINVOICE record and turn it into a ledger row."""
    row: OpenItemRow = {
        "source_object": source_object,
        "record_no": _record_no(record),
        "party_id": _party(source_object, record),
        "state": str(record.get("STATE") or "").strip(),
        "when_due": parse_date(record.get("WHENDUE"), "WHENDUE"),
        "total_due": str(parse_amount(record.get("TOTALDUE"), "TOTALDUE")),
        "currency": str(record.get("CURRENCY") or "").strip(),
        "when_modified": _when_modified(record),
    }
    return row


def payment_row(source_object: str, record: Mapping[str, Any]) -> PaymentRow:
    """Validate an APPYMT / ARPYMT record and turn it into a ledger row."""
    row: PaymentRow = {
        "source_object": source_object,
        "record_no": _record_no(record),
        "party_id": _party(source_object, record),
        "state": str(record.get("STATE") or "").strip(),
        "paid_on": parse_date(record.get("WHENPAID"), "WHENPAID"),
        "amount": str(parse_amount(record.get("TOTALENTERED"), "TOTALENTERED")),
        "when_modified": _when_modified(record),
    }
    return row


# ----------------------------------------------------------------------------- standing


@dataclass(frozen=True)
class Thresholds:
    """When a party leaves `good`. A threshold left empty (None) never applies.

    `hold`: Intacct's ONHOLD, or the oldest overdue item at least `hold_days_overdue`
    days late, or at least `hold_overdue_amount` overdue. `watch`: anything overdue at
    least `watch_days_overdue` days and more than `watch_overdue_amount`, or total due
    above the credit limit (when one is set)."""

    watch_days_overdue: int | None = 1
    watch_overdue_amount: Decimal = Decimal("0")
    hold_days_overdue: int | None = 90
    hold_overdue_amount: Decimal | None = None
    watch_over_credit_limit: bool = True

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Thresholds:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown keys under standing.thresholds: {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key in ("watch_days_overdue", "hold_days_overdue"):
                values[key] = None if value is None else _non_negative_int(key, value)
            elif key == "watch_overdue_amount":
                values[key] = _amount_setting(key, value)
            elif key == "hold_overdue_amount":
                values[key] = None if value is None else _amount_setting(key, value)
            else:
                if not isinstance(value, bool):
                    raise ValueError(f"standing.thresholds.{key} must be true or false")
                values[key] = value
        return cls(**values)


def _non_negative_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"standing.thresholds.{key} must be a whole number >= 0, got {value!r}")
    return value


def _amount_setting(key: str, value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"standing.thresholds.{key} must be a number, got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"standing.thresholds.{key} must be a number >= 0, got {value!r}")
    return amount


@dataclass(frozen=True)
class Standing:
    source_object: str  # VENDOR | CUSTOMER
    party_id: str
    total_due: Decimal
    overdue_amount: Decimal
    oldest_days_overdue: int
    open_count: int
    on_hold: bool
    credit_limit: Decimal | None
    last_payment_date: date | None
    currency: str
    band: str

    def measures(self) -> dict[str, Any]:
        """Each measure as a JSON value of its Zendesk field type."""
        return {
            "band": self.band,
            "total_due": float(self.total_due),
            "overdue_amount": float(self.overdue_amount),
            "oldest_days_overdue": self.oldest_days_overdue,
            "open_count": self.open_count,
            "on_hold": self.on_hold,
            "credit_limit": None if self.credit_limit is None else float(self.credit_limit),
            "last_payment_date": (
                None if self.last_payment_date is None else self.last_payment_date.isoformat()
            ),
            "currency": self.currency or None,
        }


def is_open(item: Mapping[str, Any]) -> bool:
    return item["state"] in OPEN_STATES and Decimal(item["total_due"]) != 0


def last_payment(payments: Iterable[Mapping[str, Any]]) -> date | None:
    dates = [
        p["paid_on"]
        for p in payments
        if p["paid_on"] is not None and p["state"] not in VOID_PAYMENT_STATES
    ]
    return max(dates, default=None)


def is_true(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "t", "1", "yes")


def band_of(
    *,
    on_hold: bool,
    total_due: Decimal,
    overdue: Decimal,
    oldest_days: int,
    credit_limit: Decimal | None,
    thresholds: Thresholds,
) -> str:
    t = thresholds
    if on_hold:
        return HOLD
    if overdue > 0 and t.hold_days_overdue is not None and oldest_days >= t.hold_days_overdue:
        return HOLD
    if t.hold_overdue_amount is not None and overdue > 0 and overdue >= t.hold_overdue_amount:
        return HOLD
    if (
        overdue > t.watch_overdue_amount
        and t.watch_days_overdue is not None
        and oldest_days >= t.watch_days_overdue
    ):
        return WATCH
    if t.watch_over_credit_limit and credit_limit and total_due > credit_limit:
        return WATCH
    return GOOD


def compute_standing(
    source_object: str,
    party_id: str,
    party: Mapping[str, Any],
    documents: Iterable[Mapping[str, Any]],
    payments: Iterable[Mapping[str, Any]],
    today: date,
    thresholds: Thresholds,
) -> Standing:
    """A party's standing on `today`. `party` is the staged VENDOR / CUSTOMER record (its
    raw payload: ONHOLD, CREDITLIMIT, CURRENCY); `documents` its staged bills or invoices
    (any state; only open ones count); `payments` its staged payments."""
    open_items = [d for d in documents if is_open(d)]
    total = sum((Decimal(d["total_due"]) for d in open_items), Decimal("0"))
    overdue_items = [d for d in open_items if d["when_due"] is not None and d["when_due"] < today]
    overdue = sum((Decimal(d["total_due"]) for d in overdue_items), Decimal("0"))
    oldest = max(((today - d["when_due"]).days for d in overdue_items), default=0)
    raw_limit = party.get("CREDITLIMIT")
    credit_limit = None
    if raw_limit is not None and str(raw_limit).strip():
        try:
            credit_limit = parse_amount(raw_limit, "CREDITLIMIT")
        except InvalidStandingRecord:
            credit_limit = None
    on_hold = is_true(party.get("ONHOLD"))
    currency = str(party.get("CURRENCY") or "").strip() or next(
        (str(d["currency"]) for d in open_items if d.get("currency")), ""
    )
    return Standing(
        source_object=source_object,
        party_id=party_id,
        total_due=total,
        overdue_amount=overdue,
        oldest_days_overdue=oldest,
        open_count=len(open_items),
        on_hold=on_hold,
        credit_limit=credit_limit,
        last_payment_date=last_payment(payments),
        currency=currency,
        band=band_of(
            on_hold=on_hold,
            total_due=total,
            overdue=overdue,
            oldest_days=oldest,
            credit_limit=credit_limit,
            thresholds=thresholds,
        ),
    )


# ----------------------------------------------------------------------------- mapping


@dataclass(frozen=True)
class StandingMapping:
    """The `standing` section of the mapping file (see default_mapping.yaml)."""

    enabled: bool = True
    # Organization fields are visible to every agent who can see organizations:
    # `band_only` publishes the band and nothing else.
    privacy: str = "full"
    thresholds: Thresholds = field(default_factory=Thresholds)
    # Measure -> organization field key. A measure left out is not written.
    fields: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StandingMapping:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown keys under standing: {', '.join(unknown)}")
        privacy = str(data.get("privacy", "full"))
        if privacy not in ("full", "band_only"):
            raise ValueError(f"standing.privacy must be full or band_only, got {privacy!r}")
        fields = {str(k): str(v) for k, v in (data.get("fields") or {}).items() if v}
        bad = sorted(set(fields) - set(MEASURE_TYPES))
        if bad:
            raise ValueError(
                f"unknown measures under standing.fields: {', '.join(bad)} "
                f"(known: {', '.join(MEASURE_TYPES)})"
            )
        keys = list(fields.values())
        if len(set(keys)) != len(keys):
            raise ValueError("standing.fields names the same organization field twice")
        enabled = data.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ValueError("standing.enabled must be true or false")
        if enabled and "band" not in fields:
            raise ValueError("standing.fields must name the band's organization field")
        return cls(
            enabled=enabled,
            privacy=privacy,
            thresholds=Thresholds.from_dict(data.get("thresholds") or {}),
            fields=fields,
        )

    def published(self) -> dict[str, str]:
        """Measure -> field key of what is written, after the privacy option."""
        if self.privacy == "band_only":
            return {"band": self.fields["band"]} if "band" in self.fields else {}
        return dict(self.fields)


def band_value(source_object: str, band: str) -> str:
    """The band as the dropdown option value, which is also the tag Zendesk puts on the
    organization: `ap-hold`, `ar-watch`."""
    return f"{LEDGER[source_object]}-{band}"


def band_options() -> list[dict[str, str]]:
    """The band dropdown's options, for both ledgers."""
    return [
        {"name": f"{LEDGER[obj].upper()} {band}", "value": band_value(obj, band)}
        for obj in ("VENDOR", "CUSTOMER")
        for band in BANDS
    ]


def organization_fields(standing: Standing, mapping: StandingMapping) -> dict[str, Any]:
    """The organization_fields to write for a standing."""
    measures = standing.measures()
    measures["band"] = band_value(standing.source_object, standing.band)
    return {key: measures[measure] for measure, key in mapping.published().items()}


def fields_hash(fields: Mapping[str, Any]) -> str:
    return content_hash(dict(fields))


def required_fields(mapping: StandingMapping) -> list[dict[str, Any]]:
    """The organization fields the mapping names, as Zendesk's create body wants them
    (for `ml-connector setup zendesk`)."""
    out = []
    for measure, key in mapping.fields.items():
        body: dict[str, Any] = {
            "key": key,
            "title": MEASURE_TITLES[measure],
            "type": MEASURE_TYPES[measure],
            "description": "Written by ml-connector from Sage Intacct.",
        }
        if body["type"] == "dropdown":
            body["custom_field_options"] = band_options()
        out.append(body)
    return out


@dataclass(frozen=True)
class FieldPlan:
    """What `setup zendesk` does about the organization fields the mapping names."""

    create: list[dict[str, Any]]
    present: list[str]
    # (key, why): a field with the key exists but can't carry the measure.
    unusable: list[tuple[str, str]]


def _same_type(want: str, have: str) -> bool:
    # Zendesk takes "dropdown" on create; older accounts list such fields as "tagger".
    dropdown = {"dropdown", "tagger"}
    return want == have or (want in dropdown and have in dropdown)


def plan_fields(mapping: StandingMapping, existing: Iterable[Mapping[str, Any]]) -> FieldPlan:
    """Which required fields to create; which exist already; which exist but have the
    wrong type or lack band options (a dropdown drops a value not among its options
    without an error, so a missing option would lose the band silently)."""
    by_key = {str(f.get("key")): f for f in existing}
    create, present, unusable = [], [], []
    for body in required_fields(mapping):
        have = by_key.get(body["key"])
        if have is None:
            create.append(body)
            continue
        if not _same_type(body["type"], str(have.get("type"))):
            unusable.append((body["key"], f"type is {have.get('type')}, needs {body['type']}"))
            continue
        if body["type"] == "dropdown":
            values = {str(o.get("value")) for o in have.get("custom_field_options") or []}
            missing = [o["value"] for o in body["custom_field_options"] if o["value"] not in values]
            if missing:
                unusable.append((body["key"], f"options missing: {', '.join(missing)}"))
                continue
        present.append(body["key"])
    return FieldPlan(create, present, unusable)
