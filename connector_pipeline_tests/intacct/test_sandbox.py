"""The sandbox gateway's own behaviour: seed data, scenario API, expiry, transactions."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from connector_pipeline.intacct import IntacctSessionInvalid, parse_response
from connector_pipeline.intacct import functions as fn
from connector_pipeline.intacct.xml import Function, build_request
from connector_pipeline_tests.intacct.conftest import RunningSandbox, SandboxFactory


def test_seed_is_deterministic_and_realistic(start_sandbox: SandboxFactory) -> None:
    first = start_sandbox(seed_vendors=400, seed_customers=20, seed=5)
    second = start_sandbox(seed_vendors=400, seed=5)
    vendors = first.get("records/VENDOR")
    strip = ("WHENMODIFIED", "WHENCREATED")
    assert [{k: v for k, v in r.items() if k not in strip} for r in vendors] == [
        {k: v for k, v in r.items() if k not in strip} for r in second.get("records/VENDOR")
    ]
    assert [v["VENDORID"] for v in vendors][:3] == ["V00001", "V00002", "V00003"]
    names = Counter(v["NAME"] for v in vendors)
    assert any(count > 1 for count in names.values()), "duplicate names across VENDORIDs"
    assert any(not name.isascii() for name in names), "non-ASCII names"
    assert {v["STATUS"] for v in vendors} == {"active", "inactive"}
    assert {v["ONHOLD"] for v in vendors} == {"true", "false"}
    contact = vendors[0]["DISPLAYCONTACT"]
    assert contact["EMAIL1"] and contact["PHONE1"] and contact["MAILADDRESS"]["CITY"]
    assert all(v["TERMNAME"] and v["TAXID"] and v["TOTALDUE"] for v in vendors)
    modified = [datetime.fromisoformat(v["WHENMODIFIED"]) for v in vendors if v["WHENMODIFIED"]]
    now = datetime.now(UTC)
    assert max(modified) < now and min(modified) < now - timedelta(days=14)
    assert len(first.get("records/CUSTOMER")) == 20


def test_scenario_api_changes_vendors(gateway: RunningSandbox) -> None:
    before = {v["VENDORID"]: v for v in gateway.get("records/VENDOR")}
    modified = gateway.post("vendors/modify", {"vendor_ids": ["V00003"]})["modified"]
    assert modified == ["V00003"]
    after = {v["VENDORID"]: v for v in gateway.get("records/VENDOR")}
    assert after["V00003"]["WHENMODIFIED"] > before["V00003"]["WHENMODIFIED"]
    assert len(gateway.post("vendors/modify", {"count": 5})["modified"]) == 5
    gateway.post("vendors/deactivate", {"vendor_ids": ["V00004"]})
    gateway.post("vendors/delete", {"vendor_ids": ["V00005"]})
    created = gateway.post("vendors", {"vendors": [{"VENDORID": "NEW9", "NAME": "Nine"}]})
    assert created[0]["RECORDNO"] > 0
    rows = {v["VENDORID"]: v for v in gateway.get("records/VENDOR")}
    assert rows["V00004"]["STATUS"] == "inactive"
    assert "V00005" not in rows and rows["NEW9"]["NAME"] == "Nine"
    stats = gateway.get("stats")
    assert stats["records"]["VENDOR"] == 50
    # Edits made "in Intacct's UI" are not API writes: benchmarks count only the latter.
    assert stats["writes"].get("VENDOR", 0) == 0
    assert stats["scenario_writes"]["VENDOR"] == 1 + 5 + 1
    gateway.post("reset")
    assert len(gateway.get("records/VENDOR")) == 50
    assert gateway.get("stats")["requests"] == 0


def test_session_expires_on_the_gateway(start_sandbox: SandboxFactory) -> None:
    sandbox = start_sandbox(seed_vendors=1, session_timeout_s=0.5)
    with sandbox.client(session_margin_s=0) as client:
        client.query("VENDOR", ["RECORDNO"])
        session_id = client._current_session().session_id
    time.sleep(1.0)
    body = build_request(
        sender_id=sandbox.config.sender_id,
        sender_password=sandbox.config.sender_password,
        control_id="c",
        functions=[Function("f", fn.lookup("VENDOR"))],
        session_id=session_id,
    )
    with pytest.raises(IntacctSessionInvalid):
        parse_response(sandbox.raw(body).content)


def test_sessiontimeout_slides_on_each_call(start_sandbox: SandboxFactory) -> None:
    sandbox = start_sandbox(seed_vendors=1, session_timeout_s=60)
    with sandbox.client() as client:
        client.query("VENDOR", ["RECORDNO"])
        first = client._current_session().expires_at
        time.sleep(1.1)
        client.query("VENDOR", ["RECORDNO"])
        second = client._current_session().expires_at
    assert first is not None and second is not None and second > first


def test_transaction_rolls_back_and_aborts_siblings(gateway: RunningSandbox) -> None:
    with gateway.client() as client:
        client.query("VENDOR", ["RECORDNO"])
        session_id = client._current_session().session_id
    body = build_request(
        sender_id=gateway.config.sender_id,
        sender_password=gateway.config.sender_password,
        control_id="c",
        functions=[
            Function("good", fn.create("VENDOR", [{"VENDORID": "T1", "NAME": "Fine"}])),
            Function("bad", fn.create("VENDOR", [{"VENDORID": "V00001", "NAME": "Dup"}])),
        ],
        session_id=session_id,
        transaction=True,
    )
    good, bad = parse_response(gateway.raw(body).content).results
    assert good.status == "aborted" and good.errors[0].errorno == "XL03000009"
    assert bad.status == "failure" and bad.errors[0].errorno == "BL34000061"
    assert "T1" not in {v["VENDORID"] for v in gateway.get("records/VENDOR")}


def test_get_is_not_the_protocol(gateway: RunningSandbox) -> None:
    import httpx

    assert httpx.get(gateway.url + "/ia/xml/xmlgw.phtml").status_code == 405


def test_customers_are_queryable(start_sandbox: SandboxFactory) -> None:
    sandbox = start_sandbox(seed_customers=12)
    with sandbox.client() as client:
        rows = [r for p in client.iter_changed("CUSTOMER", ["CUSTOMERID", "NAME"]) for r in p]
    assert sorted(r["CUSTOMERID"] for r in rows) == [f"C{n:05d}" for n in range(1, 13)]
