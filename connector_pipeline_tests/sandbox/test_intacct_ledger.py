"""The sandbox's bills and payments, read with the real client: the documented query,
dates in the user's format, payments that move the bill, and the scenario API's errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from connector_pipeline.intacct import IntacctClient
from connector_pipeline.sandbox.intacct import IntacctSandboxConfig
from connector_pipeline.sandbox.scenario import RunningSandboxes, run_sandboxes

FIELDS = ["RECORDNO", "VENDORID", "STATE", "WHENDUE", "TOTALDUE", "WHENMODIFIED"]


@pytest.fixture
def sandboxes() -> Iterator[RunningSandboxes]:
    config = IntacctSandboxConfig(seed_vendors=3, user_dateformat=".dmY")
    with run_sandboxes(intacct_config=config) as running:
        yield running


def scenario(s: RunningSandboxes, path: str, body: dict[str, Any]) -> httpx.Response:
    with s.intacct() as c:
        return c.post(f"/_sandbox/{path}", json=body)


def test_bills_and_payments_answer_query_with_dates_in_the_users_format(
    sandboxes: RunningSandboxes,
) -> None:
    bill = scenario(
        sandboxes,
        "vendor/documents",
        {"party_id": "V00001", "amount": "300", "due_date": "2026-12-31"},
    ).json()
    scenario(
        sandboxes,
        "vendor/payments",
        {"record_no": bill["RECORDNO"], "amount": "100.5", "paid_on": "2026-12-02"},
    ).raise_for_status()
    with sandboxes.intacct() as c:
        stats = c.get("/_sandbox/stats").json()
    assert stats["records"]["APBILL"] == 1 and stats["records"]["APPYMT"] == 1
    with IntacctClient.from_env(sandboxes.env) as client:
        (page,) = list(client.iter_changed("APBILL", FIELDS, None))
        payments = [r for p in client.iter_changed("APPYMT", ["VENDORID", "WHENPAID"]) for r in p]
    (record,) = page
    assert record["STATE"] == "Partially Paid"
    assert record["TOTALDUE"] == "199.50"
    assert record["WHENDUE"] == date(2026, 12, 31)  # sent as 31.12.2026 (.dmY)
    assert [(p["VENDORID"], p["WHENPAID"]) for p in payments] == [("V00001", date(2026, 12, 2))]


def test_a_payment_in_full_marks_the_bill_paid(sandboxes: RunningSandboxes) -> None:
    bill = scenario(
        sandboxes,
        "vendor/documents",
        {"party_id": "V00002", "amount": "5", "due_date": "2027-01-01"},
    ).json()
    scenario(
        sandboxes, "vendor/payments", {"record_no": bill["RECORDNO"], "paid_on": "2026-12-02"}
    ).raise_for_status()
    with sandboxes.intacct() as c:
        (stored,) = c.get("/_sandbox/records/APBILL").json()
    assert (stored["STATE"], stored["TOTALDUE"], stored["WHENPAID"]) == (
        "Paid",
        "0.00",
        "2026-12-02",
    )


def test_scenario_errors(sandboxes: RunningSandboxes) -> None:
    missing = {"party_id": "V99999", "amount": "5", "due_date": "2027-01-01"}
    assert scenario(sandboxes, "vendor/documents", missing).status_code == 404
    bill = scenario(
        sandboxes,
        "vendor/documents",
        {"party_id": "V00001", "amount": "5", "due_date": "2027-01-01"},
    ).json()
    over = {"record_no": bill["RECORDNO"], "amount": "6", "paid_on": "2026-12-02"}
    assert scenario(sandboxes, "vendor/payments", over).status_code == 422
    assert scenario(sandboxes, "supplier/hold", {"party_ids": ["V00001"]}).status_code == 422


def test_hold_is_an_edit_of_the_vendor(sandboxes: RunningSandboxes) -> None:
    with sandboxes.intacct() as c:
        before = {v["VENDORID"]: v for v in c.get("/_sandbox/records/VENDOR").json()}
        scenario(sandboxes, "vendor/hold", {"party_ids": ["V00003"]}).raise_for_status()
        after = {v["VENDORID"]: v for v in c.get("/_sandbox/records/VENDOR").json()}
    assert after["V00003"]["ONHOLD"] == "true"
    assert after["V00003"]["WHENMODIFIED"] >= (before["V00003"]["WHENMODIFIED"] or "")
