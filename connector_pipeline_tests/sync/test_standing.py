"""Standing, pure: parsing bills and payments, the measures, the band, the mapping."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from connector_pipeline.sync.mapping import ConnectorMapping
from connector_pipeline.sync.standing import (
    GOOD,
    HOLD,
    WATCH,
    InvalidStandingRecord,
    StandingMapping,
    Thresholds,
    band_options,
    compute_standing,
    document_row,
    organization_fields,
    payment_row,
    plan_fields,
    required_fields,
)

TODAY = date(2026, 11, 26)
FIELDS = {"band": "b", "total_due": "t", "oldest_days_overdue": "d", "on_hold": "h"}


def bill(due: str, amount: str, state: str = "Posted", n: int = 1) -> dict[str, Any]:
    return dict(
        document_row(
            "APBILL",
            {"RECORDNO": n, "VENDORID": "V1", "STATE": state, "WHENDUE": due, "TOTALDUE": amount},
        )
    )


def standing(documents: list[dict[str, Any]], **party: Any) -> Any:
    return compute_standing("VENDOR", "V1", party, documents, [], TODAY, Thresholds())


def test_document_rows_take_intacct_dates_and_exact_amounts() -> None:
    row = bill("12/01/2026", "1234.56")
    assert row["when_due"] == date(2026, 12, 1)
    assert row["total_due"] == "1234.56"
    assert document_row("APBILL", {"RECORDNO": "2", "VENDORID": "V", "WHENDUE": date(2026, 1, 2)})[
        "when_due"
    ] == date(2026, 1, 2)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"VENDORID": "V1"}, "RECORDNO"),
        ({"RECORDNO": "1"}, "VENDORID is empty"),
        ({"RECORDNO": "1", "VENDORID": "V1", "TOTALDUE": "1,000.00"}, "TOTALDUE is not a number"),
        ({"RECORDNO": "1", "VENDORID": "V1", "WHENDUE": "next week"}, "WHENDUE is not a date"),
        ({"RECORDNO": "1", "VENDORID": "V1", "WHENMODIFIED": "yesterday"}, "WHENMODIFIED"),
    ],
)
def test_bad_records_say_why(record: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidStandingRecord, match=reason):
        document_row("APBILL", record)


def test_payments_need_their_party() -> None:
    with pytest.raises(InvalidStandingRecord, match="CUSTOMERID is empty"):
        payment_row("ARPYMT", {"RECORDNO": "1", "VENDORID": "V1"})


def test_only_open_documents_count_and_overdue_follows_today() -> None:
    s = standing(
        [
            bill("11/20/2026", "100.00", n=1),  # 6 days late
            bill("11/01/2026", "50.25", "Partially Paid", n=2),  # 25 days late
            bill("12/20/2026", "10.00", "Selected", n=3),  # not due yet
            bill("10/01/2026", "999.00", "Paid", n=4),
            bill("10/01/2026", "999.00", "Draft", n=5),
            bill("10/01/2026", "0.00", "Posted", n=6),
        ]
    )
    assert (s.total_due, s.overdue_amount, s.oldest_days_overdue, s.open_count) == (
        Decimal("160.25"),
        Decimal("150.25"),
        25,
        3,
    )
    assert s.band == WATCH


def test_a_bill_due_today_is_not_overdue() -> None:
    s = standing([bill("11/26/2026", "10.00")])
    assert s.overdue_amount == 0 and s.band == GOOD


@pytest.mark.parametrize(
    ("thresholds", "documents", "party", "band"),
    [
        (Thresholds(), [], {"ONHOLD": "true"}, HOLD),
        (Thresholds(hold_days_overdue=20), [bill("11/01/2026", "5.00")], {}, HOLD),
        (Thresholds(hold_days_overdue=None), [bill("01/01/2026", "5.00")], {}, WATCH),
        (Thresholds(hold_overdue_amount=Decimal("100")), [bill("11/25/2026", "100")], {}, HOLD),
        (Thresholds(watch_days_overdue=7), [bill("11/25/2026", "100")], {}, GOOD),
        (Thresholds(watch_overdue_amount=Decimal("500")), [bill("11/25/2026", "100")], {}, GOOD),
        (Thresholds(), [bill("12/25/2026", "600")], {"CREDITLIMIT": "500"}, WATCH),
        (
            Thresholds(watch_over_credit_limit=False),
            [bill("12/25/2026", "600")],
            {"CREDITLIMIT": "500"},
            GOOD,
        ),
    ],
)
def test_bands(
    thresholds: Thresholds, documents: list[dict[str, Any]], party: dict[str, Any], band: str
) -> None:
    s = compute_standing("VENDOR", "V1", party, documents, [], TODAY, thresholds)
    assert s.band == band


def test_last_payment_leaves_out_void_payments() -> None:
    payments: list[dict[str, Any]] = [
        {"paid_on": date(2026, 11, 1), "state": "Complete"},
        {"paid_on": date(2026, 11, 20), "state": "Voided"},
        {"paid_on": None, "state": "Complete"},
    ]
    s = compute_standing("VENDOR", "V1", {}, [], payments, TODAY, Thresholds())
    assert s.last_payment_date == date(2026, 11, 1)


def test_organization_fields_by_mapping_and_privacy() -> None:
    s = standing([bill("11/20/2026", "100.00")], ONHOLD="false")
    full = StandingMapping.from_dict({"fields": FIELDS})
    assert organization_fields(s, full) == {"b": "ap-watch", "t": 100.0, "d": 6, "h": False}
    private = StandingMapping.from_dict({"fields": FIELDS, "privacy": "band_only"})
    assert organization_fields(s, private) == {"b": "ap-watch"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"fields": {"band": "b", "balance": "x"}}, "unknown measures"),
        ({"fields": {"total_due": "t"}}, "band"),
        ({"fields": {"band": "b", "total_due": "b"}}, "twice"),
        ({"fields": FIELDS, "privacy": "secret"}, "privacy"),
        ({"fields": FIELDS, "thresholds": {"hold_days_overdue": -1}}, "hold_days_overdue"),
        ({"fields": FIELDS, "thresholds": {"watch_overdue_amount": "lots"}}, "a number"),
        ({"fields": FIELDS, "thresholds": {"later": 1}}, "unknown keys"),
        ({"fields": FIELDS, "colour": "red"}, "unknown keys under standing"),
    ],
)
def test_mapping_errors_are_clear(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StandingMapping.from_dict(data)


def test_setup_plan_creates_missing_fields_and_reports_unusable_ones() -> None:
    mapping = StandingMapping.from_dict({"fields": FIELDS})
    assert [f["type"] for f in required_fields(mapping)] == [
        "dropdown",
        "decimal",
        "integer",
        "checkbox",
    ]
    existing: list[dict[str, Any]] = [
        {"key": "b", "type": "tagger", "custom_field_options": band_options()[:2]},
        {"key": "t", "type": "text"},
        {"key": "d", "type": "integer"},
    ]
    plan = plan_fields(mapping, existing)
    assert [f["key"] for f in plan.create] == ["h"]
    assert plan.present == ["d"]
    assert [k for k, _ in plan.unusable] == ["b", "t"]
    assert "ap-hold" in dict(plan.unusable)["b"]


def test_the_mapping_file_refuses_two_writers_of_one_field() -> None:
    text = """
organization:
  organization_fields:
    intacct_total_due: "{TOTALDUE}"
standing:
  fields:
    band: intacct_standing
    total_due: intacct_total_due
"""
    with pytest.raises(ValueError, match="both write intacct_total_due"):
        ConnectorMapping.from_yaml(text)


def test_a_mapping_file_without_standing_publishes_nothing() -> None:
    assert ConnectorMapping.from_yaml("organization: {}").standing.enabled is False
