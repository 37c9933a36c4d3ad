"""Reading: keyset paging under concurrent change, time zones, readByQuery/readMore, limits."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest
from lxml import etree

from connector_pipeline import settings
from connector_pipeline.intacct import IntacctResultError, parse_response
from connector_pipeline.intacct import functions as fn
from connector_pipeline.intacct.filters import gt, in_
from connector_pipeline.intacct.xml import Function, build_request
from connector_pipeline_tests.intacct.conftest import RunningSandbox, SandboxFactory

FIELDS = ["RECORDNO", "VENDORID", "NAME", "WHENMODIFIED"]


def _modify_in_another_process(sandbox: RunningSandbox, count: int) -> set[str]:
    code = (
        "import httpx, json, sys;"
        "r = httpx.post(sys.argv[1], json={'count': int(sys.argv[2])}, timeout=60);"
        "r.raise_for_status(); print(json.dumps(r.json()['modified']))"
    )
    url = f"{sandbox.url}/_sandbox/vendors/modify"
    proc = subprocess.run(
        [sys.executable, "-c", code, url, str(count)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(json.loads(proc.stdout))


def _sandbox_vendors(sandbox: RunningSandbox) -> dict[int, dict]:
    return {v["RECORDNO"]: v for v in sandbox.get("records/VENDOR")}


def test_keyset_paging_while_vendors_change_between_pages(start_sandbox: SandboxFactory) -> None:
    sandbox = start_sandbox(seed_vendors=2_500, seed=7)
    initial = set(_sandbox_vendors(sandbox))
    seen: list[tuple[datetime, int]] = []
    modified: set[str] = set()
    with sandbox.client() as client:
        for page_number, page in enumerate(client.iter_changed("VENDOR", FIELDS, page_size=400)):
            seen.extend((r["WHENMODIFIED"], r["RECORDNO"]) for r in page)
            if page_number in (0, 1, 2):
                # Another process changes vendors, read and unread alike, between our pages.
                modified |= _modify_in_another_process(sandbox, 150)
    final = _sandbox_vendors(sandbox)
    assert len(modified) > 200
    # A full read starts with the records that have no WHENMODIFIED, in RECORDNO order.
    unstamped = [recordno for when, recordno in seen if when is None]
    assert unstamped and seen[: len(unstamped)] == [(None, r) for r in unstamped]
    assert unstamped == sorted(unstamped)
    stamped = seen[len(unstamped) :]
    assert stamped == sorted(stamped), "pages must follow (WHENMODIFIED, RECORDNO) order"
    assert len(seen) == len(set(seen)), "no record version is returned twice"
    counts = Counter(recordno for _, recordno in seen)
    assert set(counts) == initial, "nothing is skipped"
    for recordno, vendor in final.items():
        if vendor["VENDORID"] not in modified:
            assert counts[recordno] == 1
        if vendor["WHENMODIFIED"] is not None:
            last = max(when for when, r in stamped if r == recordno)
            assert last == datetime.fromisoformat(vendor["WHENMODIFIED"]), "latest version"


def test_full_read_includes_records_without_whenmodified(start_sandbox: SandboxFactory) -> None:
    sandbox = start_sandbox(seed_vendors=200)
    truth = _sandbox_vendors(sandbox)
    unstamped = sorted(r for r, v in truth.items() if v["WHENMODIFIED"] is None)
    assert len(unstamped) == 2  # migrated records, as the seed makes every 89th
    with sandbox.client() as client:
        full = [r for p in client.iter_changed("VENDOR", FIELDS, page_size=150) for r in p]
        # One more query than the stamped records' two pages, for the unstamped ones.
        assert client.calls_by_function()["query"] == 3
        assert sorted(r["RECORDNO"] for r in full) == sorted(truth)
        assert [r["RECORDNO"] for r in full[:2]] == unstamped
        assert all(r["WHENMODIFIED"] is None for r in full[:2])
        # An incremental read leaves them out: a change to one would stamp it.
        after = (full[2]["WHENMODIFIED"], full[2]["RECORDNO"])
        rest = [r for p in client.iter_changed("VENDOR", FIELDS, after) for r in p]
        assert [r["RECORDNO"] for r in rest] == [r["RECORDNO"] for r in full[3:]]
    sandbox.post("vendors/modify", {"vendor_ids": [truth[unstamped[0]]["VENDORID"]]})
    with sandbox.client() as client:
        rest = [r for p in client.iter_changed("VENDOR", FIELDS, after) for r in p]
        assert rest[-1]["RECORDNO"] == unstamped[0] and rest[-1]["WHENMODIFIED"] is not None


def test_offset_paging_would_have_skipped_records(start_sandbox: SandboxFactory) -> None:
    """The control experiment for the test above: the same changes break offset paging."""
    sandbox = start_sandbox(seed_vendors=2_500, seed=7)
    initial = set(_sandbox_vendors(sandbox))
    seen: set[int] = set()
    order = [("WHENMODIFIED", True), ("RECORDNO", True)]
    with sandbox.client() as client:
        for page_number in range(7):
            page = client.query(
                "VENDOR", FIELDS, None, order, page_size=400, offset=400 * page_number
            )
            seen |= {r["RECORDNO"] for r in page.records}
            if page_number in (0, 1, 2):
                sandbox.post("vendors/modify", {"count": 150})
    assert initial - seen, "offset paging over changing data misses records"


def test_keyset_resumes_strictly_after_the_cursor(gateway: RunningSandbox) -> None:
    with gateway.client() as client:
        everything = [r for p in client.iter_changed("VENDOR", FIELDS, page_size=7) for r in p]
        assert len(everything) == 50
        middle = everything[20]
        after = (middle["WHENMODIFIED"], middle["RECORDNO"])
        rest = [r for p in client.iter_changed("VENDOR", FIELDS, after) for r in p]
        assert rest == everything[21:]
        until = everything[40]["WHENMODIFIED"]
        bounded = [r for p in client.iter_changed("VENDOR", FIELDS, after, until=until) for r in p]
        assert bounded == [r for r in everything[21:] if r["WHENMODIFIED"] < until]


def test_timestamps_are_converted_from_the_user_zone(start_sandbox: SandboxFactory) -> None:
    sandbox = start_sandbox(seed_vendors=30, user_gmt_offset="+09:30")
    truth = _sandbox_vendors(sandbox)
    with sandbox.client() as client:
        assert client.formatting.gmtoffset == "+09:30"
        records = client.query("VENDOR", [*FIELDS, "WHENCREATED"]).records
        for record in records:
            when = record["WHENMODIFIED"]
            assert when.tzinfo is not None and when.utcoffset() == timedelta(0)
            assert when == datetime.fromisoformat(truth[record["RECORDNO"]]["WHENMODIFIED"])
            assert isinstance(record["RECORDNO"], int)
            assert record["WHENCREATED"] <= record["WHENMODIFIED"]
        # Filter values are written back in the user's zone: the boundary is exact.
        pivot = sorted(r["WHENMODIFIED"] for r in records)[15]
        newer = client.query("VENDOR", FIELDS, gt("WHENMODIFIED", pivot)).records
        assert {r["RECORDNO"] for r in newer} == {
            r["RECORDNO"] for r in records if r["WHENMODIFIED"] > pivot
        }


def test_wire_timestamps_are_local_wall_clock(start_sandbox: SandboxFactory) -> None:
    sandbox = start_sandbox(seed_vendors=1, user_gmt_offset="-08:00")
    vendor = next(iter(_sandbox_vendors(sandbox).values()))
    with sandbox.client() as client:
        client.query("VENDOR", FIELDS)
        session = client._current_session()
        body = build_request(
            sender_id=sandbox.config.sender_id,
            sender_password=sandbox.config.sender_password,
            control_id="c",
            functions=[Function("f", fn.query("VENDOR", ["WHENMODIFIED"], pagesize=1))],
            session_id=session.session_id,
        )
    (result,) = parse_response(sandbox.raw(body).content).results
    expected = (datetime.fromisoformat(vendor["WHENMODIFIED"]) - timedelta(hours=8)).strftime(
        "%m/%d/%Y %H:%M:%S"
    )
    assert result.records[0]["WHENMODIFIED"] == expected


def test_read_by_query_pages_with_read_more(gateway: RunningSandbox) -> None:
    with gateway.client() as client:
        pages = list(client.iter_read_by_query("VENDOR", ["RECORDNO", "VENDORID"], page_size=7))
        assert [len(p) for p in pages] == [7] * 7 + [1]
        assert len({r["RECORDNO"] for p in pages for r in p}) == 50
        by_function = client.calls_by_function()
        assert (by_function["readByQuery"], by_function["readMore"]) == (1, 7)
        inactive = client.read_by_query("VENDOR", ["VENDORID", "STATUS"], "STATUS = 'F'")
        assert inactive and all(r["STATUS"] == "inactive" for r in inactive)
        quoted = client.read_by_query("VENDOR", ["VENDORID"], "VENDORID IN ('V00001','V00002')")
        assert sorted(r["VENDORID"] for r in quoted) == ["V00001", "V00002"]


def test_expired_result_id_is_a_result_error(gateway: RunningSandbox) -> None:
    with gateway.client() as client:
        pages = client.iter_read_by_query("VENDOR", ["RECORDNO"], page_size=10)
        next(pages)
        gateway.post("result_ids/expire")
        with pytest.raises(IntacctResultError) as info:
            next(pages)
        assert info.value.errors[0].errorno == "readMore failed"
        assert "invalid or expired resultId" in info.value.errors[0].description2


def test_result_ids_expire_by_time(start_sandbox: SandboxFactory) -> None:
    sandbox = start_sandbox(seed_vendors=20, result_id_ttl_s=0.2)
    with sandbox.client() as client:
        pages = client.iter_read_by_query("VENDOR", ["RECORDNO"], page_size=5)
        next(pages)
        time.sleep(0.4)
        with pytest.raises(IntacctResultError, match="expired"):
            next(pages)


def test_query_in_chunks_values_and_read_chunks_keys(gateway: RunningSandbox) -> None:
    vendors = gateway.get("records/VENDOR")
    ids = [v["VENDORID"] for v in vendors] + [f"X{i}" for i in range(2_450)]
    with gateway.client() as client:
        found = client.query_in("VENDOR", "VENDORID", ids, ["VENDORID", "NAME"])
        assert sorted(r["VENDORID"] for r in found) == sorted(v["VENDORID"] for v in vendors)
        assert client.calls_by_function()["query"] == 3  # 2,500 values -> 3 chunks of <= 1,000
        keys = [v["RECORDNO"] for v in vendors] * 5
        read = client.read("VENDOR", keys, ["RECORDNO", "NAME"])
        assert len(read) == 250
        assert client.calls_by_function()["read"] == 3


def test_client_enforces_page_limits(gateway: RunningSandbox) -> None:
    with gateway.client() as client:
        with pytest.raises(ValueError):
            client.query("VENDOR", FIELDS, page_size=settings.INTACCT_QUERY_MAX_PAGESIZE + 1)
        with pytest.raises(ValueError):
            client.read_by_query("VENDOR", page_size=settings.INTACCT_READBYQUERY_MAX_PAGESIZE + 1)
        with pytest.raises(ValueError):
            client.query("VENDOR", [])
        assert client.http_calls == 0


def _raw_function(sandbox: RunningSandbox, body: etree._Element) -> object:
    with sandbox.client() as client:
        client.query("VENDOR", ["RECORDNO"], page_size=1)
        session = client._current_session()
    request = build_request(
        sender_id=sandbox.config.sender_id,
        sender_password=sandbox.config.sender_password,
        control_id="c",
        functions=[Function("f", body)],
        session_id=session.session_id,
    )
    (result,) = parse_response(sandbox.raw(request).content).results
    return result


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (fn.query("VENDOR", ["RECORDNO"], pagesize=2_001), "pagesize 2001"),
        (fn.read_by_query("VENDOR", [], "", 1_001), "pagesize 1001"),
        (
            fn.query("VENDOR", ["RECORDNO"], filter=in_("VENDORID", range(1_001)), pagesize=10),
            "at most 1000 values",
        ),
        (fn.query("VENDOR", ["NOSUCHFIELD"], pagesize=10), "Invalid fields list NOSUCHFIELD"),
        (fn.query("VENDOR9", ["RECORDNO"], pagesize=10), "Object definition VENDOR9 not found"),
        (fn.read_by_query("VENDOR", [], "NAME = = 'x'", 10), "expected a value"),
        (fn.read("VENDOR", list(range(101))), "at most 100 keys"),
    ],
)
def test_sandbox_enforces_documented_limits(
    gateway: RunningSandbox, body: etree._Element, text: str
) -> None:
    result = _raw_function(gateway, body)
    assert result.status == "failure"  # type: ignore[attr-defined]
    assert text in " ".join(e.description2 for e in result.errors)  # type: ignore[attr-defined]


def test_unknown_object_raises_result_error(gateway: RunningSandbox) -> None:
    with gateway.client() as client, pytest.raises(IntacctResultError, match="VENDOR9"):
        client.query("VENDOR9", ["RECORDNO"])


def test_lookup_describes_the_ticket_relationship(gateway: RunningSandbox) -> None:
    with gateway.client() as client:
        definition = client.lookup(settings.INTACCT_TICKET_OBJECT)
    fields = {f["ID"] for f in definition["Fields"]["Field"]}
    assert set(settings.INTACCT_TICKET_FIELDS) <= fields
    relationship = definition["Relationships"]["Relationship"]
    assert relationship["RELATEDBY"] == "RVENDOR"
    # Upper case, as in the recorded APBILL lookup (lookup_apbill_data_element_live.xml).
    assert relationship["OBJECTNAME"] == "VENDOR"
